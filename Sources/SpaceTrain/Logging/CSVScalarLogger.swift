import Foundation
import SpaceCore

/// Appends scalars to a CSV file in long format, one row per value:
///
///     step,wall_time,tag,value
///     100,1712345678.123456,loss,0.25
///
/// Long format keeps the header fixed however many tags appear later. An existing file is appended
/// to (a resumed run); a last line cut by a killed run is ended before new rows are added. Each call
/// is one `write`, handed to the kernel before it returns; `flush()` also fsyncs. Thread-safe.
public final class CSVScalarLogger: @unchecked Sendable {
    public static let header = "step,wall_time,tag,value"

    public let path: String
    private let file: AppendOnlyFile
    private let lock = NSLock()

    /// Opens `path` for appending, creating it and its directory if needed. Throws if the file
    /// exists with a different header.
    public init(path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw SpaceError.file(path: directory, message: "cannot create the log directory: \(error.localizedDescription)")
            }
        }
        self.path = path
        file = try AppendOnlyFile(path: path)
        let size = try file.size()
        if size == 0 {
            try file.append(Array((CSVScalarLogger.header + "\n").utf8))
        } else {
            let expected = Array((CSVScalarLogger.header + "\n").utf8)
            let head = try file.read(at: 0, count: expected.count)
            guard head == expected else {
                let line = String(decoding: head.prefix(while: { $0 != 10 }), as: UTF8.self)
                throw SpaceError.file(path: path, message: "existing CSV starts with '\(line)', expected '\(CSVScalarLogger.header)'")
            }
            if try file.read(at: size - 1, count: 1) != [10] { try file.append([10]) }
        }
    }

    deinit { try? file.close() }

    /// Appends one row per value, all with the same step and wall time.
    public func log(_ values: [(tag: String, value: Double)], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        let time = String(format: "%.6f", wallTime)
        var text = ""
        for (tag, value) in values {
            text += "\(step),\(time),\(CSVScalarLogger.quoted(tag)),\(value)\n"
        }
        lock.lock()
        defer { lock.unlock() }
        try file.append(Array(text.utf8))
    }

    /// Puts what was written on stable storage (fsync).
    public func flush() throws {
        lock.lock()
        defer { lock.unlock() }
        try file.sync()
    }

    /// Syncs and closes the file; later writes throw. Closing twice is allowed.
    public func close() throws {
        lock.lock()
        defer { lock.unlock() }
        try file.close()
    }

    /// A CSV field (RFC 4180): quoted, with quotes doubled, if it holds a comma, quote or line break.
    static func quoted(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
