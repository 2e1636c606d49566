import SpaceCore

/// A minimal PNG encoder for image summaries: 8-bit pixels, no filtering, and a zlib stream made of
/// STORED (uncompressed) deflate blocks. That is valid PNG that any decoder reads; files are about
/// the size of the raw pixels, which is fine for occasional training summaries. It needs no zlib.
///
/// Layout: signature, IHDR, one IDAT, IEND; each chunk is length (big-endian), type, data, CRC32 of
/// type + data. The zlib stream is the header 78 01, blocks of at most 65535 bytes
/// (BFINAL/BTYPE=00 byte, LEN, NLEN little-endian, bytes), then the Adler-32 of the data (big-endian).
public enum UncompressedPNG {
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    /// The largest payload of one stored deflate block.
    static let maxStoredBlock = 65535
    /// The largest IDAT chunk written.
    static let maxIDATChunk = 1 << 30

    /// Encodes row-major interleaved 8-bit pixels: `channels` 1 (gray), 2 (gray + alpha), 3 (RGB) or
    /// 4 (RGBA); `pixels.count` must be `width * height * channels`.
    public static func encode(pixels: [UInt8], width: Int, height: Int, channels: Int = 3) throws -> [UInt8] {
        let colorTypes = [1: UInt8(0), 2: 4, 3: 2, 4: 6]
        guard let colorType = colorTypes[channels] else {
            throw SpaceError.argument(op: "UncompressedPNG.encode", message: "\(channels) channels (expected 1, 2, 3 or 4)")
        }
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw SpaceError.argument(op: "UncompressedPNG.encode", message: "image size \(width)x\(height)")
        }
        guard pixels.count == width * height * channels else {
            throw SpaceError.shape(op: "UncompressedPNG.encode",
                                   message: "\(pixels.count) bytes for \(width)x\(height) pixels of \(channels) channels")
        }

        // Scanlines: each row is preceded by its filter type, 0 (None).
        let rowBytes = width * channels
        var raw = [UInt8]()
        raw.reserveCapacity(height * (rowBytes + 1))
        for y in 0..<height {
            raw.append(0)
            raw += pixels[(y * rowBytes)..<((y + 1) * rowBytes)]
        }

        var header = bigEndianBytes(UInt32(width)) + bigEndianBytes(UInt32(height))
        header += [8, colorType, 0, 0, 0]   // bit depth, colour type, compression, filter, interlace

        var png = signature
        appendChunk("IHDR", header, to: &png)
        // A chunk holds at most 2^31 - 1 bytes; split the stream over IDAT chunks well below that.
        let stream = zlibStored(raw)
        for start in stride(from: 0, to: stream.count, by: maxIDATChunk) {
            appendChunk("IDAT", Array(stream[start..<min(stream.count, start + maxIDATChunk)]), to: &png)
        }
        appendChunk("IEND", [], to: &png)
        return png
    }

    /// A zlib stream holding `data` in stored deflate blocks.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        let blocks = max(1, (data.count + maxStoredBlock - 1) / maxStoredBlock)
        var out: [UInt8] = [0x78, 0x01]   // deflate, 32K window; (0x78 << 8 | 0x01) % 31 == 0
        out.reserveCapacity(2 + data.count + 5 * blocks + 4)
        for b in 0..<blocks {
            let start = b * maxStoredBlock
            let end = min(data.count, start + maxStoredBlock)
            out.append(b == blocks - 1 ? 1 : 0)   // BFINAL, BTYPE = 00 (stored)
            let length = UInt16(end - start)
            out += littleEndianBytes(length) + littleEndianBytes(~length)
            out += data[start..<end]
        }
        out += bigEndianBytes(Adler32.checksum(data))
        return out
    }

    static func appendChunk(_ type: String, _ data: [UInt8], to png: inout [UInt8]) {
        let typeBytes = Array(type.utf8)
        png += bigEndianBytes(UInt32(data.count))
        png += typeBytes
        png += data
        png += bigEndianBytes(CRC32.update(CRC32.checksum(typeBytes), data))
    }
}
