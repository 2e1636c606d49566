import Foundation
import SpaceCore

/// Writes a TensorBoard event file: `events.out.tfevents.<unix time>.<hostname>` in `directory`,
/// TFRecord-framed Event messages, starting with the file version "brain.Event:2".
///
/// Every event is handed to the kernel in one `write` before the call returns, so a killed run
/// leaves a readable file (at worst the event being written is cut, which readers detect and
/// TensorBoard skips). `flush()` additionally asks for the data to reach the disk (fsync).
/// Safe to call from several threads.
public final class EventFileWriter: @unchecked Sendable {
    public let path: String
    private let file: AppendOnlyFile
    private let lock = NSLock()

    /// Creates the directory if needed and a new event file in it. If a file of that name exists
    /// (two writers started in the same second), ".1", ".2", ... is appended to the name.
    public init(directory: String, filenameSuffix: String = "", wallTime: Double = Date().timeIntervalSince1970) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SpaceError.file(path: directory, message: "cannot create the log directory: \(error.localizedDescription)")
        }
        let base = (directory as NSString).appendingPathComponent(
            "events.out.tfevents." + String(format: "%010lld", Int64(wallTime)) + "." + hostName() + filenameSuffix)
        var attempt = 0
        var created: AppendOnlyFile?
        while created == nil {
            guard attempt < 1000 else { throw SpaceError.file(path: base, message: "event files .1 to .999 exist already") }
            created = try AppendOnlyFile.createNew(path: attempt == 0 ? base : "\(base).\(attempt)")
            attempt += 1
        }
        file = created!
        path = file.path
        try write(SummaryEvent(wallTime: wallTime, fileVersion: SummaryEvent.currentFileVersion))
    }

    deinit { try? file.close() }

    /// Appends one event as a TFRecord.
    public func write(_ event: SummaryEvent) throws {
        let record = TFRecord.frame(event.encoded())
        lock.lock()
        defer { lock.unlock() }
        try file.append(record)
    }

    /// One event holding all `values` (each a `simple_value`) at `step`.
    public func addScalars(_ values: [(tag: String, value: Float)], step: Int,
                           wallTime: Double = Date().timeIntervalSince1970) throws {
        try write(SummaryEvent(wallTime: wallTime, step: Int64(step),
                               values: values.map { .scalar(tag: $0.tag, value: $0.value) }))
    }

    public func addScalar(_ tag: String, _ value: Float, step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        try addScalars([(tag, value)], step: step, wallTime: wallTime)
    }

    public func addImage(_ tag: String, _ image: SummaryImage, step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        try write(SummaryEvent(wallTime: wallTime, step: Int64(step), values: [.image(tag: tag, image: image)]))
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
}

/// Reads an event file back, verifying the framing and both checksums of every record, and decodes
/// the events' scalar and image values. For tests and tools; TensorBoard itself reads these files too.
public struct EventFileReader {
    /// One scalar value (`simple_value`) of an event.
    public struct Scalar: Equatable, Sendable {
        public var step: Int
        public var wallTime: Double
        public var tag: String
        public var value: Float
    }

    /// One image value of an event.
    public struct Image: Equatable, Sendable {
        public var step: Int
        public var wallTime: Double
        public var tag: String
        public var width: Int
        public var height: Int
        public var colorspace: Int
        public var png: [UInt8]
    }

    public let path: String
    /// All events in file order, the file-version event first.
    public let events: [SummaryEvent]

    /// Reads and decodes `path`. Throws `EventFileError` if a record is cut, fails a checksum, or is
    /// not an Event.
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SpaceError.file(path: path, message: "cannot read the event file")
        }
        try self.init(bytes: [UInt8](data), path: path)
    }

    public init(bytes: [UInt8], path: String = "<memory>") throws {
        self.path = path
        var events: [SummaryEvent] = []
        for record in try TFRecord.records(in: bytes, path: path) {
            do {
                events.append(try SummaryEvent(decoding: record))
            } catch let error as ProtoError {
                // Records are slices of `bytes`; their data starts 12 bytes after the record.
                throw EventFileError.malformedEvent(path: path, offset: record.startIndex - 12, message: error.description)
            }
        }
        self.events = events
    }

    /// The file version of the first event, nil if there is none.
    public var fileVersion: String? { events.first?.fileVersion }

    /// Every scalar value, in file order.
    public var scalars: [Scalar] {
        events.flatMap { event in
            event.values.compactMap { value -> Scalar? in
                guard case .scalar(let tag, let v) = value else { return nil }
                return Scalar(step: Int(event.step), wallTime: event.wallTime, tag: tag, value: v)
            }
        }
    }

    /// Every image value, in file order.
    public var images: [Image] {
        events.flatMap { event in
            event.values.compactMap { value -> Image? in
                guard case .image(let tag, let image) = value else { return nil }
                return Image(step: Int(event.step), wallTime: event.wallTime, tag: tag, width: image.width,
                             height: image.height, colorspace: image.colorspace, png: image.encodedImage)
            }
        }
    }

    /// The event files in `directory` (names containing "tfevents", as TensorBoard selects them),
    /// sorted by name, which is by creation time.
    public static func eventFiles(in directory: String) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw SpaceError.file(path: directory, message: "cannot list the log directory: \(error.localizedDescription)")
        }
        return names.filter { $0.contains("tfevents") }.sorted().map { (directory as NSString).appendingPathComponent($0) }
    }
}

/// This machine's host name, as TensorFlow puts it in event file names ("localhost" if unknown).
func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    let name = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let safe = name.filter { $0 != "/" }
    return safe.isEmpty ? "localhost" : safe
}
