/// TensorBoard's `Event` message with the parts we write: a file version or a summary of scalars and
/// images. Field numbers (tensorboard/compat/proto/event.proto and summary.proto):
///
///     Event         { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
///     Summary       { repeated Value value = 1; }
///     Summary.Value { string tag = 1; oneof { float simple_value = 2; Image image = 4; ... } }
///     Summary.Image { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
public struct SummaryEvent: Equatable, Sendable {
    /// Seconds since the Unix epoch.
    public var wallTime: Double
    public var step: Int64
    /// Set only on a file's first event ("brain.Event:2").
    public var fileVersion: String?
    /// The summary's values; empty for the file-version event.
    public var values: [SummaryValue]

    public init(wallTime: Double, step: Int64 = 0, fileVersion: String? = nil, values: [SummaryValue] = []) {
        self.wallTime = wallTime
        self.step = step
        self.fileVersion = fileVersion
        self.values = values
    }

    /// The file version TensorBoard expects in the first record.
    public static let currentFileVersion = "brain.Event:2"
}

/// One `Summary.Value`.
public enum SummaryValue: Equatable, Sendable {
    /// `simple_value`: what TensorBoard's scalar dashboard shows.
    case scalar(tag: String, value: Float)
    case image(tag: String, image: SummaryImage)
    /// A value of a kind this reader does not decode (histogram, audio, tensor, ...).
    case other(tag: String)

    public var tag: String {
        switch self {
        case .scalar(let tag, _), .image(let tag, _), .other(let tag): return tag
        }
    }
}

/// `Summary.Image`: an encoded (PNG) image and its size.
public struct SummaryImage: Equatable, Sendable {
    public var height: Int
    public var width: Int
    /// 1 grayscale, 2 grayscale + alpha, 3 RGB, 4 RGBA.
    public var colorspace: Int
    public var encodedImage: [UInt8]

    public init(height: Int, width: Int, colorspace: Int, encodedImage: [UInt8]) {
        self.height = height
        self.width = width
        self.colorspace = colorspace
        self.encodedImage = encodedImage
    }
}

// MARK: - Encoding

extension SummaryEvent {
    /// The serialized Event message. Zero-valued scalar fields are omitted as proto3 does, except
    /// inside the Summary.Value oneof, where a set field is always written (a 0 loss must stay a value).
    public func encoded() -> [UInt8] {
        var event = ProtoWriter()
        event.double(1, wallTime)
        if step != 0 { event.int64(2, step) }
        if let fileVersion { event.string(3, fileVersion) }
        if !values.isEmpty {
            var summary = ProtoWriter()
            for value in values { summary.message(1, value.encoded()) }
            event.message(5, summary)
        }
        return event.serialized
    }
}

extension SummaryValue {
    func encoded() -> ProtoWriter {
        var v = ProtoWriter()
        v.string(1, tag)
        switch self {
        case .scalar(_, let value):
            v.float(2, value)
        case .image(_, let image):
            var m = ProtoWriter()
            if image.height != 0 { m.int64(1, Int64(image.height)) }
            if image.width != 0 { m.int64(2, Int64(image.width)) }
            if image.colorspace != 0 { m.int64(3, Int64(image.colorspace)) }
            if !image.encodedImage.isEmpty { m.bytes(4, image.encodedImage) }
            v.message(4, m)
        case .other:
            break
        }
        return v
    }
}

// MARK: - Decoding

extension SummaryEvent {
    /// Decodes an Event message; unknown fields are skipped. Throws `ProtoError` on malformed input.
    init(decoding bytes: ArraySlice<UInt8>) throws {
        self.init(wallTime: 0)
        var reader = ProtoReader(bytes)
        while let (field, value) = try reader.next() {
            switch field {
            case 1: wallTime = try value.asDouble(field: field)
            case 2: step = try value.asInt64(field: field)
            case 3: fileVersion = try value.asString(field: field)
            case 5: values += try SummaryEvent.decodeSummary(try value.asBytes(field: field))
            default: continue
            }
        }
    }

    private static func decodeSummary(_ bytes: ArraySlice<UInt8>) throws -> [SummaryValue] {
        var values: [SummaryValue] = []
        var reader = ProtoReader(bytes)
        while let (field, value) = try reader.next() {
            if field == 1 { values.append(try decodeValue(try value.asBytes(field: field))) }
        }
        return values
    }

    private static func decodeValue(_ bytes: ArraySlice<UInt8>) throws -> SummaryValue {
        var tag = ""
        var scalar: Float?
        var image: SummaryImage?
        var reader = ProtoReader(bytes)
        while let (field, value) = try reader.next() {
            switch field {
            case 1: tag = try value.asString(field: field)
            case 2: scalar = try value.asFloat(field: field)
            case 4: image = try decodeImage(try value.asBytes(field: field))
            default: continue
            }
        }
        if let scalar { return .scalar(tag: tag, value: scalar) }
        if let image { return .image(tag: tag, image: image) }
        return .other(tag: tag)
    }

    private static func decodeImage(_ bytes: ArraySlice<UInt8>) throws -> SummaryImage {
        var image = SummaryImage(height: 0, width: 0, colorspace: 0, encodedImage: [])
        var reader = ProtoReader(bytes)
        while let (field, value) = try reader.next() {
            switch field {
            case 1: image.height = Int(Int32(truncatingIfNeeded: try value.asInt64(field: field)))
            case 2: image.width = Int(Int32(truncatingIfNeeded: try value.asInt64(field: field)))
            case 3: image.colorspace = Int(Int32(truncatingIfNeeded: try value.asInt64(field: field)))
            case 4: image.encodedImage = Array(try value.asBytes(field: field))
            default: continue
            }
        }
        return image
    }
}
