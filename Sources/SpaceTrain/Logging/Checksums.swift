/// The checksums the log formats need, in pure Swift: CRC32C (TFRecord framing), CRC32 (PNG chunks)
/// and Adler-32 (the zlib stream inside a PNG). All are table-driven, one byte at a time.

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord files use it.
/// `checksum("123456789") == 0xE3069283`.
public enum CRC32C {
    static let table: [UInt32] = makeReflectedTable(polynomial: 0x82F6_3B78)

    /// Continues a checksum: `update(update(0, a), b) == checksum(a + b)`.
    public static func update<Bytes: Collection>(_ crc: UInt32, _ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        reflectedCRC(crc, bytes, table: table)
    }

    public static func checksum<Bytes: Collection>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        update(0, bytes)
    }

    /// TFRecord's masking: rotate right by 15 bits and add a constant, so that a CRC stored inside
    /// checksummed data does not checksum to a fixed value.
    public static func mask(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// The inverse of `mask`.
    public static func unmask(_ masked: UInt32) -> UInt32 {
        let rotated = masked &- 0xA282_EAD8
        return (rotated >> 17) | (rotated << 15)
    }

    /// `mask(checksum(bytes))`: what a TFRecord stores.
    public static func maskedChecksum<Bytes: Collection>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        mask(checksum(bytes))
    }
}

/// CRC-32 (ISO-HDLC, reflected polynomial 0xEDB88320), as PNG chunks and zip use it.
/// `checksum("123456789") == 0xCBF43926`.
public enum CRC32 {
    static let table: [UInt32] = makeReflectedTable(polynomial: 0xEDB8_8320)

    public static func update<Bytes: Collection>(_ crc: UInt32, _ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        reflectedCRC(crc, bytes, table: table)
    }

    public static func checksum<Bytes: Collection>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        update(0, bytes)
    }
}

/// Adler-32, the checksum that ends a zlib stream. `checksum("Wikipedia") == 0x11E60398`.
public enum Adler32 {
    static let modulus: UInt32 = 65521
    /// The most bytes that can be summed before `b` may overflow 32 bits (zlib's NMAX).
    static let blockLength = 5552

    /// Continues a checksum; start from 1 (`checksum` does).
    public static func update<Bytes: Collection>(_ adler: UInt32, _ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var a = adler & 0xFFFF, b = adler >> 16
        var pending = 0
        for byte in bytes {
            a &+= UInt32(byte)
            b &+= a
            pending += 1
            if pending == blockLength { a %= modulus; b %= modulus; pending = 0 }
        }
        return ((b % modulus) << 16) | (a % modulus)
    }

    public static func checksum<Bytes: Collection>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        update(1, bytes)
    }
}

/// The 256-entry table of a reflected CRC-32 with the given (reversed) polynomial.
private func makeReflectedTable(polynomial: UInt32) -> [UInt32] {
    (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ polynomial : c >> 1 }
        return c
    }
}

/// A reflected CRC-32 with initial value and final xor 0xFFFFFFFF, continued from `crc`.
private func reflectedCRC<Bytes: Collection>(_ crc: UInt32, _ bytes: Bytes, table: [UInt32]) -> UInt32 where Bytes.Element == UInt8 {
    table.withUnsafeBufferPointer { t in
        var c = ~crc
        let viaBuffer: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            for byte in buffer { c = t[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        }
        if viaBuffer == nil {
            for byte in bytes { c = t[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        }
        return ~c
    }
}
