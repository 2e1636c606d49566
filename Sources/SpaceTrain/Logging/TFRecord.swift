import Foundation
import SpaceCore

/// TFRecord framing, the container of TensorBoard event files. Each record is
///
///     uint64 length (little-endian)
///     uint32 masked CRC32C of those 8 length bytes
///     length bytes of data
///     uint32 masked CRC32C of the data
///
/// with masking as in `CRC32C.mask`.
public enum TFRecord {
    /// Bytes of framing around each record's data: length, length CRC, data CRC.
    public static let overhead = 16

    /// One framed record.
    public static func frame<Bytes: Collection>(_ data: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + overhead)
        let length = littleEndianBytes(UInt64(data.count))
        out += length
        out += littleEndianBytes(CRC32C.maskedChecksum(length))
        out += data
        out += littleEndianBytes(CRC32C.maskedChecksum(data))
        return out
    }

    /// Splits a file's bytes into the records' data, verifying both checksums of every record.
    /// Throws `EventFileError.truncatedRecord` if the bytes end inside a record (a writer killed
    /// mid-write), or a checksum error naming the record's offset.
    public static func records(in bytes: [UInt8], path: String = "<memory>") throws -> [ArraySlice<UInt8>] {
        var records: [ArraySlice<UInt8>] = []
        var offset = 0
        while offset < bytes.count {
            func need(_ count: Int, from start: Int, _ section: String) throws {
                if bytes.count - start < count {
                    throw EventFileError.truncatedRecord(path: path, offset: offset, section: section)
                }
            }
            try need(8, from: offset, "length")
            let lengthBytes = bytes[offset..<offset + 8]
            try need(12, from: offset, "length checksum")
            guard readLittleEndian(UInt32.self, bytes, at: offset + 8) == CRC32C.maskedChecksum(lengthBytes) else {
                throw EventFileError.lengthChecksumMismatch(path: path, offset: offset)
            }
            let length = readLittleEndian(UInt64.self, bytes, at: offset)
            let dataStart = offset + 12
            guard length <= UInt64(bytes.count - dataStart) else {
                throw EventFileError.truncatedRecord(path: path, offset: offset, section: "data")
            }
            let dataEnd = dataStart + Int(length)
            try need(4, from: dataEnd, "data checksum")
            let data = bytes[dataStart..<dataEnd]
            guard readLittleEndian(UInt32.self, bytes, at: dataEnd) == CRC32C.maskedChecksum(data) else {
                throw EventFileError.dataChecksumMismatch(path: path, offset: offset)
            }
            records.append(data)
            offset = dataEnd + 4
        }
        return records
    }
}

/// What can be wrong with an event file's contents.
public enum EventFileError: Error, Equatable, CustomStringConvertible {
    /// The file ends inside the record starting at `offset`; `section` is the part that is cut.
    case truncatedRecord(path: String, offset: Int, section: String)
    /// The stored checksum of the length of the record at `offset` does not match.
    case lengthChecksumMismatch(path: String, offset: Int)
    /// The stored checksum of the data of the record at `offset` does not match.
    case dataChecksumMismatch(path: String, offset: Int)
    /// The record at `offset` is not a valid Event message.
    case malformedEvent(path: String, offset: Int, message: String)

    public var description: String {
        switch self {
        case .truncatedRecord(let path, let offset, let section):
            return "\(path): record at byte \(offset) is truncated in its \(section)"
        case .lengthChecksumMismatch(let path, let offset):
            return "\(path): record at byte \(offset) fails its length CRC32C check"
        case .dataChecksumMismatch(let path, let offset):
            return "\(path): record at byte \(offset) fails its data CRC32C check"
        case .malformedEvent(let path, let offset, let message):
            return "\(path): record at byte \(offset) is not a valid Event: \(message)"
        }
    }
}

func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}

func bigEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}

func readLittleEndian<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], at offset: Int) -> T {
    var value: T = 0
    for i in 0..<MemoryLayout<T>.size { value |= T(bytes[offset + i]) << (8 * i) }
    return value
}

/// A file opened for appending through POSIX calls: every `append` is handed to the kernel before it
/// returns (no user-space buffer), so a killed process leaves everything written so far on disk.
final class AppendOnlyFile {
    let path: String
    private var descriptor: Int32

    /// Opens `path` for appending, creating it if needed.
    convenience init(path: String) throws {
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw AppendOnlyFile.posixError(path: path, "open") }
        self.init(path: path, descriptor: fd)
    }

    /// Creates `path` and opens it for appending; nil if it already exists.
    static func createNew(path: String) throws -> AppendOnlyFile? {
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 && errno == EEXIST { return nil }
        guard fd >= 0 else { throw AppendOnlyFile.posixError(path: path, "open") }
        return AppendOnlyFile(path: path, descriptor: fd)
    }

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { if descriptor >= 0 { _ = posixClose(descriptor) } }

    var isOpen: Bool { descriptor >= 0 }

    /// Writes all of `bytes` at the end of the file, retrying partial and interrupted writes.
    func append(_ bytes: [UInt8]) throws {
        guard isOpen else { throw SpaceError.file(path: path, message: "write after close") }
        try bytes.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let n = write(descriptor, buffer.baseAddress! + done, buffer.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw AppendOnlyFile.posixError(path: path, "write")
                }
                done += n
            }
        }
    }

    /// The file's size in bytes.
    func size() throws -> Int {
        guard isOpen else { throw SpaceError.file(path: path, message: "size after close") }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw AppendOnlyFile.posixError(path: path, "fstat") }
        return Int(info.st_size)
    }

    /// Up to `count` bytes starting at `offset`.
    func read(at offset: Int, count: Int) throws -> [UInt8] {
        guard isOpen else { throw SpaceError.file(path: path, message: "read after close") }
        var out = [UInt8](repeating: 0, count: count)
        let n = out.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress!, count, off_t(offset)) }
        guard n >= 0 else { throw AppendOnlyFile.posixError(path: path, "pread") }
        return Array(out.prefix(n))
    }

    /// Asks the kernel to put the file on stable storage (fsync).
    func sync() throws {
        guard isOpen else { return }
        guard fsync(descriptor) == 0 else { throw AppendOnlyFile.posixError(path: path, "fsync") }
    }

    /// Syncs and closes; closing twice is allowed.
    func close() throws {
        guard isOpen else { return }
        let fd = descriptor
        descriptor = -1
        let synced = fsync(fd) == 0
        let syncError = errno
        guard posixClose(fd) == 0 else { throw AppendOnlyFile.posixError(path: path, "close") }
        if !synced { throw SpaceError.file(path: path, message: "fsync failed: \(String(cString: strerror(syncError)))") }
    }

    static func posixError(path: String, _ call: String) -> SpaceError {
        let code = errno
        return .file(path: path, message: "\(call) failed: \(String(cString: strerror(code))) (errno \(code))")
    }
}

/// `close(2)`, out of reach of the `close()` methods' names.
private func posixClose(_ descriptor: Int32) -> Int32 { close(descriptor) }
