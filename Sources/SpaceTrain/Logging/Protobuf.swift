/// The protocol-buffer wire format, just enough to write and read TensorBoard's Event and Summary
/// messages by hand (no protobuf dependency). See https://protobuf.dev/programming-guides/encoding/.

/// Wire types used by the messages we write; groups (3, 4) are rejected when reading.
enum ProtoWireType: UInt8 {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case fixed32 = 5
}

/// Appends fields to a message. Fields are written in the order they are added.
struct ProtoWriter {
    private(set) var serialized: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            serialized.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        serialized.append(UInt8(v))
    }

    mutating func key(_ field: Int, _ wireType: ProtoWireType) {
        varint(UInt64(field) << 3 | UInt64(wireType.rawValue))
    }

    /// An int64 or int32 field: negative values are sign-extended to ten varint bytes, as protobuf does.
    mutating func int64(_ field: Int, _ value: Int64) {
        key(field, .varint)
        varint(UInt64(bitPattern: value))
    }

    mutating func double(_ field: Int, _ value: Double) {
        key(field, .fixed64)
        littleEndian(value.bitPattern)
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, .fixed32)
        littleEndian(value.bitPattern)
    }

    mutating func bytes<Bytes: Collection>(_ field: Int, _ value: Bytes) where Bytes.Element == UInt8 {
        key(field, .lengthDelimited)
        varint(UInt64(value.count))
        serialized.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) {
        bytes(field, Array(value.utf8))
    }

    mutating func message(_ field: Int, _ value: ProtoWriter) {
        bytes(field, value.serialized)
    }

    private mutating func littleEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { serialized.append(contentsOf: $0) }
    }
}

/// One decoded field value; length-delimited values are slices of the message's bytes.
enum ProtoValue {
    case varint(UInt64)
    case fixed64(UInt64)
    case fixed32(UInt32)
    case lengthDelimited(ArraySlice<UInt8>)
}

/// Reads the fields of one message in order. Throws `ProtoError` on malformed input.
struct ProtoReader {
    private let bytes: ArraySlice<UInt8>
    private var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    /// The next field, or nil at the end of the message.
    mutating func next() throws -> (field: Int, value: ProtoValue)? {
        if position == bytes.endIndex { return nil }
        let key = try varint()
        let field = Int(key >> 3)
        guard field > 0 else { throw ProtoError("field number 0 at byte \(position - bytes.startIndex)") }
        switch key & 7 {
        case UInt64(ProtoWireType.varint.rawValue):
            return (field, .varint(try varint()))
        case UInt64(ProtoWireType.fixed64.rawValue):
            return (field, .fixed64(try fixed(UInt64.self)))
        case UInt64(ProtoWireType.fixed32.rawValue):
            return (field, .fixed32(try fixed(UInt32.self)))
        case UInt64(ProtoWireType.lengthDelimited.rawValue):
            let length = try varint()
            guard length <= UInt64(bytes.endIndex - position) else {
                throw ProtoError("field \(field) claims \(length) bytes, \(bytes.endIndex - position) remain")
            }
            let start = position
            position += Int(length)
            return (field, .lengthDelimited(bytes[start..<position]))
        default:
            throw ProtoError("field \(field) has unsupported wire type \(key & 7)")
        }
    }

    private mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while position < bytes.endIndex {
            let byte = bytes[position]
            position += 1
            guard shift < 64 else { throw ProtoError("varint longer than ten bytes") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        throw ProtoError("message ends inside a varint")
    }

    private mutating func fixed<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard bytes.endIndex - position >= size else { throw ProtoError("message ends inside a fixed\(size * 8) value") }
        var value: T = 0
        for i in 0..<size { value |= T(bytes[position + i]) << (8 * i) }
        position += size
        return value
    }
}

/// A malformed protocol-buffer message.
struct ProtoError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension ProtoValue {
    /// The value of a varint field read as a signed integer (int32/int64: two's complement).
    func asInt64(field: Int) throws -> Int64 {
        guard case .varint(let v) = self else { throw ProtoError("field \(field) is not a varint") }
        return Int64(bitPattern: v)
    }

    func asDouble(field: Int) throws -> Double {
        guard case .fixed64(let v) = self else { throw ProtoError("field \(field) is not a fixed64 (double)") }
        return Double(bitPattern: v)
    }

    func asFloat(field: Int) throws -> Float {
        guard case .fixed32(let v) = self else { throw ProtoError("field \(field) is not a fixed32 (float)") }
        return Float(bitPattern: v)
    }

    func asBytes(field: Int) throws -> ArraySlice<UInt8> {
        guard case .lengthDelimited(let v) = self else { throw ProtoError("field \(field) is not length-delimited") }
        return v
    }

    func asString(field: Int) throws -> String {
        guard let s = String(validating: try asBytes(field: field), as: UTF8.self) else {
            throw ProtoError("field \(field) is not valid UTF-8")
        }
        return s
    }
}
