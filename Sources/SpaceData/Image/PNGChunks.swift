import SpaceCore

/// What a PNG's IHDR chunk says about the pixels.
public struct PNGHeader: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// 1, 2, 4, 8 or 16 bits per sample.
    public let bitDepth: Int
    /// PNG colour type: 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA.
    public let colorType: Int
    public let interlaced: Bool
}

/// The chunk-level pass that runs before libpng sees a file.
///
/// PIL (whose `Image.open(...).convert('RGB')` the datasets reproduce) takes pixel values as stored
/// and ignores colour management, whereas libpng's simplified API converts gamma (`gAMA`, `sRGB`,
/// `iCCP`, `cHRM`) and treats 16-bit data without such chunks as linear light. So every ancillary chunk
/// except `tRNS` is dropped here; what remains (IHDR, PLTE, tRNS, IDAT, IEND and any unknown critical
/// chunk, which libpng then rejects) decodes to the stored values. Truncated input is passed on as far
/// as it goes, so libpng reports it.
enum PNGChunks {
    static let signature: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]

    /// Rewrites made to the IHDR so the simplified API hands back raw samples.
    enum Rewrite {
        case none
        /// 16-bit grey+alpha declared as 8-bit RGBA of the same width: both are 4 bytes per pixel, so
        /// filtering and interlacing are identical and the bytes come back as (Ghi, Glo, Ahi, Alo).
        case greyAlpha16AsRGBA8
    }

    /// Checks the signature and IHDR, and returns the header and the filtered chunk stream.
    static func prepare(_ bytes: [UInt8], path: String, rewrite: (PNGHeader) -> Rewrite = { _ in .none },
                        keepTransparency: (PNGHeader) -> Bool = { _ in true }) throws -> (header: PNGHeader, data: [UInt8]) {
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else {
            throw SpaceError.file(path: path, message: "not a PNG file (bad signature)")
        }
        guard bytes.count >= 33 else { throw SpaceError.file(path: path, message: "truncated PNG: no complete IHDR chunk") }
        guard readUInt32(bytes, 8) == 13, Array(bytes[12..<16]) == Array("IHDR".utf8) else {
            throw SpaceError.file(path: path, message: "corrupt PNG: the first chunk is not a 13-byte IHDR")
        }
        let header = PNGHeader(width: Int(readUInt32(bytes, 16)), height: Int(readUInt32(bytes, 20)),
                               bitDepth: Int(bytes[24]), colorType: Int(bytes[25]), interlaced: bytes[28] != 0)
        try validate(header, path: path)
        let keepTRNS = keepTransparency(header)

        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        out.append(contentsOf: signature)
        var pos = 8
        while pos < bytes.count {
            guard pos + 8 <= bytes.count else { out.append(contentsOf: bytes[pos...]); break }
            let length = Int(readUInt32(bytes, pos))
            let type = Array(bytes[(pos + 4)..<(pos + 8)])
            let end = pos + 12 + length
            guard length < 0x8000_0000, end <= bytes.count else { out.append(contentsOf: bytes[pos...]); break }
            let critical = type[0] & 0x20 == 0
            let isTRNS = type == Array("tRNS".utf8)
            if critical || (isTRNS && keepTRNS) { out.append(contentsOf: bytes[pos..<end]) }
            pos = end
            if type == Array("IEND".utf8) { break }
        }
        if case .greyAlpha16AsRGBA8 = rewrite(header) {
            // IHDR data starts at 16 in `out` too (the signature and IHDR are copied unchanged).
            out[24] = 8
            out[25] = 6
            let crc = crc32(out[12..<29])
            out[29] = UInt8(crc >> 24); out[30] = UInt8((crc >> 16) & 0xFF)
            out[31] = UInt8((crc >> 8) & 0xFF); out[32] = UInt8(crc & 0xFF)
        }
        return (header, out)
    }

    static func validate(_ h: PNGHeader, path: String) throws {
        let allowed: [Int: [Int]] = [0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]]
        guard let depths = allowed[h.colorType], depths.contains(h.bitDepth) else {
            throw SpaceError.file(path: path, message: "corrupt PNG: colour type \(h.colorType) with bit depth \(h.bitDepth)")
        }
        guard h.width > 0, h.height > 0, h.width <= 1 << 20, h.height <= 1 << 20, h.width * h.height <= 1 << 28 else {
            throw SpaceError.file(path: path, message: "unsupported PNG size \(h.width)x\(h.height)")
        }
    }

    static func readUInt32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    private static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// The CRC-32 PNG chunks carry (over chunk type and data).
    static func crc32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
