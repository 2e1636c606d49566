// A minimal, read-only ZIP reader for PyTorch's zip checkpoints (torch.save since 1.6).
//
// PyTorch (through miniz) writes every record STORED, uncompressed, with a data descriptor after the
// data and the sizes and CRC-32 only in the central directory; records are padded to an alignment
// through the local header's extra field. ZIP64 structures appear when the archive or a record
// passes 4 GiB. This reader supports exactly that: stored records, ZIP64, CRC-32 verification.
// Compressed or encrypted records, multi-disk archives and duplicate names are refused with a
// `SpaceError.file` naming the archive and the record.

/// The directory of a ZIP archive held in memory, and the byte ranges of its stored records.
struct ZipArchive {
    /// One record, as the central directory describes it.
    struct Entry {
        let name: String
        /// 0 = stored. Anything else is refused when the data is asked for.
        let method: UInt16
        let flags: UInt16
        let crc32: UInt32
        let compressedSize: Int
        let size: Int
        let localHeaderOffset: Int
    }

    let path: String
    let bytes: UnsafeRawBufferPointer
    /// Records in central-directory order.
    let entries: [Entry]
    private let index: [String: Int]

    /// Reads the central directory of the archive `bytes` (the whole file); `path` names it in errors.
    init(bytes: UnsafeRawBufferPointer, path: String) throws {
        self.path = path
        self.bytes = bytes
        func fail(_ m: String) -> SpaceError { .file(path: path, message: "zip archive: " + m) }
        let n = bytes.count
        guard n >= 22 else { throw fail("\(n) bytes is too short to hold an end-of-central-directory record") }

        // The end-of-central-directory record: the last signature whose comment reaches the end.
        var eocd = -1
        var p = n - 22
        let lowest = max(0, n - 22 - 0xFFFF)
        while p >= lowest {
            if ZipArchive.u32(bytes, p) == 0x0605_4B50 && p + 22 + Int(ZipArchive.u16(bytes, p + 20)) == n { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else { throw fail("no end-of-central-directory record (truncated or not a zip file)") }
        let diskNumber = ZipArchive.u16(bytes, eocd + 4), cdDisk = ZipArchive.u16(bytes, eocd + 6)
        var entryCount = Int(ZipArchive.u16(bytes, eocd + 10))
        var cdSize = Int(ZipArchive.u32(bytes, eocd + 12))
        var cdOffset = Int(ZipArchive.u32(bytes, eocd + 16))
        guard diskNumber == 0 || diskNumber == 0xFFFF, cdDisk == 0 || cdDisk == 0xFFFF else {
            throw fail("multi-disk archives are not supported")
        }
        if entryCount == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            // ZIP64: a locator just before the EOCD points at the ZIP64 end-of-central-directory record.
            let locator = eocd - 20
            guard locator >= 0, ZipArchive.u32(bytes, locator) == 0x0706_4B50 else {
                throw fail("the end-of-central-directory record asks for ZIP64 but has no ZIP64 locator")
            }
            let record64 = ZipArchive.u64(bytes, locator + 8)
            guard locator >= 56, record64 <= UInt64(locator - 56), ZipArchive.u32(bytes, Int(record64)) == 0x0606_4B50 else {
                throw fail("the ZIP64 end-of-central-directory record at \(record64) is missing or out of range")
            }
            let r = Int(record64)
            let count64 = ZipArchive.u64(bytes, r + 32), size64 = ZipArchive.u64(bytes, r + 40), offset64 = ZipArchive.u64(bytes, r + 48)
            guard count64 <= UInt64(n), size64 <= UInt64(n), offset64 <= UInt64(n) else {
                throw fail("ZIP64 central directory fields out of range")
            }
            entryCount = Int(count64); cdSize = Int(size64); cdOffset = Int(offset64)
        }
        guard cdOffset <= n, cdSize <= n - cdOffset else {
            throw fail("central directory [\(cdOffset), +\(cdSize)) runs past the end of the \(n)-byte file (truncated?)")
        }

        var entries: [Entry] = []
        entries.reserveCapacity(entryCount)
        var index: [String: Int] = [:]
        var q = cdOffset
        let cdEnd = cdOffset + cdSize
        for k in 0..<entryCount {
            guard q + 46 <= cdEnd, ZipArchive.u32(bytes, q) == 0x0201_4B50 else {
                throw fail("central directory entry \(k) at byte \(q) is missing or damaged")
            }
            let flags = ZipArchive.u16(bytes, q + 8)
            let method = ZipArchive.u16(bytes, q + 10)
            let crc = ZipArchive.u32(bytes, q + 16)
            var compressed = Int(ZipArchive.u32(bytes, q + 20))
            var size = Int(ZipArchive.u32(bytes, q + 24))
            let nameLength = Int(ZipArchive.u16(bytes, q + 28))
            let extraLength = Int(ZipArchive.u16(bytes, q + 30))
            let commentLength = Int(ZipArchive.u16(bytes, q + 32))
            let startDisk = ZipArchive.u16(bytes, q + 34)
            var local = Int(ZipArchive.u32(bytes, q + 42))
            let nameStart = q + 46
            let next = nameStart + nameLength + extraLength + commentLength
            guard next <= cdEnd else { throw fail("central directory entry \(k) runs past the directory's end") }
            guard let name = String(validating: UnsafeRawBufferPointer(rebasing: bytes[nameStart ..< nameStart + nameLength]), as: UTF8.self) else {
                throw fail("central directory entry \(k) has a name that is not UTF-8")
            }
            // ZIP64 extended information replaces exactly the 32-bit fields that are all ones, in order.
            if compressed == 0xFFFF_FFFF || size == 0xFFFF_FFFF || local == 0xFFFF_FFFF || startDisk == 0xFFFF {
                var e = nameStart + nameLength
                let extraEnd = e + extraLength
                var found = false
                while e + 4 <= extraEnd {
                    let id = ZipArchive.u16(bytes, e), length = Int(ZipArchive.u16(bytes, e + 2))
                    guard e + 4 + length <= extraEnd else { break }
                    if id == 0x0001 {
                        var f = e + 4
                        func take() throws -> Int {
                            guard f + 8 <= e + 4 + length else { throw fail("record '\(name)': ZIP64 extra field too short") }
                            let v = ZipArchive.u64(bytes, f)
                            f += 8
                            guard v <= UInt64(n) else { throw fail("record '\(name)': ZIP64 field \(v) exceeds the file size") }
                            return Int(v)
                        }
                        if size == 0xFFFF_FFFF { size = try take() }
                        if compressed == 0xFFFF_FFFF { compressed = try take() }
                        if local == 0xFFFF_FFFF { local = try take() }
                        found = true
                        break
                    }
                    e += 4 + length
                }
                guard found || startDisk == 0xFFFF else { throw fail("record '\(name)' needs a ZIP64 extra field and has none") }
            }
            guard index[name] == nil else { throw fail("record '\(name)' appears twice") }
            index[name] = entries.count
            entries.append(Entry(name: name, method: method, flags: flags, crc32: crc, compressedSize: compressed,
                                 size: size, localHeaderOffset: local))
            q = next
        }
        self.entries = entries
        self.index = index
    }

    func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The byte range of a stored record's data within the archive, checked against its local
    /// header and (when `verify`) its CRC-32.
    func dataRange(of entry: Entry, verify: Bool = true) throws -> Range<Int> {
        func fail(_ m: String) -> SpaceError { .file(path: path, message: "zip record '\(entry.name)': " + m) }
        guard entry.flags & 1 == 0 else { throw fail("is encrypted; encrypted records are not supported") }
        guard entry.method == 0 else {
            let how = entry.method == 8 ? "deflate-compressed" : "compressed with method \(entry.method)"
            throw fail("is \(how); only stored (uncompressed) records are supported, which is what torch.save writes")
        }
        guard entry.compressedSize == entry.size else {
            throw fail("stored record has compressed size \(entry.compressedSize) != size \(entry.size)")
        }
        let h = entry.localHeaderOffset
        guard h <= bytes.count - 30, ZipArchive.u32(bytes, h) == 0x0403_4B50 else {
            throw fail("local header at byte \(h) is missing or out of range (truncated?)")
        }
        let start = h + 30 + Int(ZipArchive.u16(bytes, h + 26)) + Int(ZipArchive.u16(bytes, h + 28))
        guard start <= bytes.count, entry.size <= bytes.count - start else {
            throw fail("data [\(start), +\(entry.size)) runs past the end of the \(bytes.count)-byte file (truncated?)")
        }
        let range = start ..< start + entry.size
        if verify {
            let crc = ZipArchive.crc32(UnsafeRawBufferPointer(rebasing: bytes[range]))
            guard crc == entry.crc32 else {
                throw fail("CRC-32 mismatch (stored \(hex(entry.crc32)), computed \(hex(crc))): the data is corrupted")
            }
        }
        return range
    }

    private func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }

    // MARK: Little-endian fields (callers check bounds)

    static func u16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 { UInt16(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
    static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 { UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    static func u64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 { UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }

    // MARK: CRC-32 (IEEE 802.3, reflected, as ZIP uses), slicing by 8

    private static let crcTables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 { t[k * 256 + i] = (t[(k - 1) * 256 + i] >> 8) ^ t[Int(t[(k - 1) * 256 + i] & 0xFF)] }
        }
        return t
    }()

    static func crc32(_ data: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = data.baseAddress, data.count > 0 else { return 0 }
        return crcTables.withUnsafeBufferPointer { tp -> UInt32 in
            let t = tp.baseAddress!
            var c: UInt32 = 0xFFFF_FFFF
            var i = 0
            let n = data.count
            while i + 8 <= n {
                let w = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                let lo = UInt32(truncatingIfNeeded: w) ^ c, hi = UInt32(truncatingIfNeeded: w >> 32)
                c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                  ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                  ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                  ^ t[256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                c = t[Int((c ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (c >> 8)
                i += 1
            }
            return ~c
        }
    }
}
