import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A safetensors file (https://github.com/huggingface/safetensors): an 8-byte little-endian header
/// length N, a JSON header of N bytes `{name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}`
/// with an optional `"__metadata__"` string-to-string map, then the raw little-endian tensor bytes,
/// offsets relative to the end of the header.
///
/// Reading maps the file once and copies each tensor out. F32, F64, F16 and BF16 become Float32
/// tensors; I64, I32, I16, I8, U8 and BOOL become `Int64Tensor`s (integers stay exact). Everything is
/// validated the way the reference Rust implementation does (header bounds, JSON, dtypes, shapes,
/// offsets in range, matching shape x dtype size, no overlap, no gap, no trailing bytes); a problem
/// throws `SpaceError.file` naming the path and what is wrong.
///
/// Writing produces F32 and I64 tensors, data laid out in key order, header padded with spaces to a
/// multiple of 8 bytes (as the Rust writer), and is atomic: a temporary file in the same directory is
/// written, flushed and renamed over the destination.
public struct SafeTensors {
    /// The file this was read from.
    public let path: String
    /// The `"__metadata__"` map (empty when absent).
    public let metadata: [String: String]
    /// Every tensor, by name.
    public let values: [String: StateValue]

    /// The tensor names, sorted.
    public var keys: [String] { values.keys.sorted() }

    public subscript(key: String) -> StateValue? { values[key] }

    /// The Float32 tensor called `key`; throws naming the file if it is missing or integer-typed.
    public func tensor(_ key: String) throws -> Tensor {
        guard let v = values[key] else {
            throw SpaceError.file(path: path, message: "no tensor named '\(key)' (the file has \(values.count))")
        }
        guard let t = v.tensor else {
            throw SpaceError.file(path: path, message: "tensor '\(key)' is \(v.dtype), not a float tensor")
        }
        return t
    }

    /// The int64 tensor called `key`; throws naming the file if it is missing or float-typed.
    public func int64(_ key: String) throws -> Int64Tensor {
        guard let v = values[key] else {
            throw SpaceError.file(path: path, message: "no tensor named '\(key)' (the file has \(values.count))")
        }
        guard let t = v.int64Tensor else {
            throw SpaceError.file(path: path, message: "tensor '\(key)' is \(v.dtype), not an integer tensor")
        }
        return t
    }

    // MARK: Reading

    /// Reads and validates the file at `path`.
    public static func load(path: String) throws -> SafeTensors {
        try MappedFile.withBytes(path: path) { try parse($0, path: path) }
    }

    /// Parses the bytes of a whole safetensors file; `path` names it in errors.
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> SafeTensors {
        func fail(_ message: String) -> SpaceError { .file(path: path, message: message) }
        let size = bytes.count
        guard size >= 8 else {
            throw fail("file too short: \(size) bytes, a safetensors file starts with an 8-byte header length")
        }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(size - 8) else {
            throw fail("header length \(headerLength) runs past the end of the file (\(size) bytes, so at most \(size - 8))")
        }
        let n = Int(headerLength)
        guard n >= 2 else { throw fail("header of \(n) bytes cannot hold a JSON object") }
        let header = UnsafeRawBufferPointer(rebasing: bytes[8 ..< 8 + n])
        let root: JSONValue
        do {
            var parser = JSONParser(header)
            root = try parser.parseDocument()
        } catch let e as JSONParser.Failure {
            throw fail("malformed JSON header: \(e.message) at byte \(e.offset) of the header")
        }
        guard case .object(let members) = root else { throw fail("malformed header: the JSON is not an object") }

        let dataStart = 8 + n
        let dataSize = size - dataStart
        var metadata: [String: String] = [:]
        var infos: [(name: String, dtype: DType, shape: [Int], begin: Int, end: Int)] = []
        var seen = Set<String>()
        for (name, value) in members {
            guard seen.insert(name).inserted else { throw fail("malformed header: key '\(name)' appears twice") }
            if name == "__metadata__" {
                guard case .object(let entries) = value else { throw fail("malformed header: __metadata__ is not an object") }
                for (k, v) in entries {
                    guard case .string(let s) = v else { throw fail("malformed header: __metadata__ value '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard case .object(let fields) = value else { throw fail("malformed header: entry '\(name)' is not an object") }
            func field(_ f: String) -> JSONValue? { fields.first { $0.0 == f }?.1 }
            guard case .string(let dtypeName)? = field("dtype") else { throw fail("tensor '\(name)': missing or non-string dtype") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw fail("tensor '\(name)': unsupported dtype \(dtypeName) (readable: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard case .array(let shapeValues)? = field("shape") else { throw fail("tensor '\(name)': missing or non-array shape") }
            var shape: [Int] = []
            for s in shapeValues {
                guard case .integer(let d) = s, d >= 0 else { throw fail("tensor '\(name)': shape \(shapeValues.map(\.text)) is not a list of non-negative integers") }
                shape.append(d)
            }
            guard case .array(let offsetValues)? = field("data_offsets"), offsetValues.count == 2,
                  case .integer(let begin) = offsetValues[0], case .integer(let end) = offsetValues[1], begin >= 0, end >= 0 else {
                throw fail("tensor '\(name)': data_offsets is not a pair of non-negative integers")
            }
            guard begin <= end, end <= dataSize else {
                throw fail("tensor '\(name)': data_offsets [\(begin), \(end)) out of range of the \(dataSize) data bytes")
            }
            var elements = 1
            for d in shape {
                let (m, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("tensor '\(name)': shape \(shapeString(shape)) is too large") }
                elements = m
            }
            let (bytesNeeded, overflow) = elements.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, bytesNeeded == end - begin else {
                throw fail("tensor '\(name)': \(dtype.rawValue) \(shapeString(shape)) needs \(overflow ? "too many" : String(bytesNeeded)) bytes but data_offsets [\(begin), \(end)) span \(end - begin)")
            }
            infos.append((name, dtype, shape, begin, end))
        }

        // The data must be covered exactly: no overlaps, no gaps, nothing after the last tensor.
        let byOffset = infos.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var covered = 0
        var previous = ""
        for info in byOffset {
            if info.begin < covered {
                throw fail("tensor '\(info.name)' bytes [\(info.begin), \(info.end)) overlap tensor '\(previous)' (ends at \(covered))")
            }
            if info.begin > covered {
                throw fail("data bytes [\(covered), \(info.begin)) before tensor '\(info.name)' belong to no tensor")
            }
            covered = info.end
            previous = info.name
        }
        if covered != dataSize {
            throw fail("\(dataSize - covered) data bytes after the last tensor belong to no tensor (the file is \(size) bytes)")
        }

        var values: [String: StateValue] = [:]
        let data = UnsafeRawBufferPointer(rebasing: bytes[dataStart...])
        for info in infos {
            let src = UnsafeRawBufferPointer(rebasing: data[info.begin ..< info.end])
            values[info.name] = decode(src, dtype: info.dtype, shape: info.shape)
        }
        return SafeTensors(path: path, metadata: metadata, values: values)
    }

    /// The dtypes this reader understands, with their byte sizes.
    enum DType: String, CaseIterable {
        case F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL

        var size: Int {
            switch self {
            case .F64, .I64: return 8
            case .F32, .I32: return 4
            case .F16, .BF16, .I16: return 2
            case .I8, .U8, .BOOL: return 1
            }
        }
    }

    private static func decode(_ src: UnsafeRawBufferPointer, dtype: DType, shape: [Int]) -> StateValue {
        let count = shape.reduce(1, *)
        func floats(_ element: (Int) -> Float) -> StateValue {
            let s = Storage(count: count)
            for i in 0..<count { s.pointer[i] = element(i) }
            return .float(Tensor(shape: shape, storage: s))
        }
        func ints(_ element: (Int) -> Int64) -> StateValue {
            .int64(try! Int64Tensor((0..<count).map(element), shape: shape))
        }
        func u16(_ i: Int) -> UInt16 { UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        switch dtype {
        case .F32:
            #if _endian(little)
            let s = Storage(count: count)
            if count > 0 { UnsafeMutableRawPointer(s.pointer).copyMemory(from: src.baseAddress!, byteCount: 4 * count) }
            return .float(Tensor(shape: shape, storage: s))
            #else
            return floats { Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            #endif
        case .F64:
            return floats { Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
        case .F16:
            return floats { halfToFloat(u16($0)) }
        case .BF16:
            return floats { Float(bitPattern: UInt32(u16($0)) << 16) }
        case .I64:
            #if _endian(little)
            var v = [Int64](repeating: 0, count: count)
            if count > 0 { v.withUnsafeMutableBytes { $0.copyMemory(from: src) } }
            return .int64(try! Int64Tensor(v, shape: shape))
            #else
            return ints { Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            #endif
        case .I32:
            return ints { Int64(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
        case .I16:
            return ints { Int64(Int16(bitPattern: u16($0))) }
        case .I8:
            return ints { Int64(src.load(fromByteOffset: $0, as: Int8.self)) }
        case .U8, .BOOL:
            return ints { Int64(src.load(fromByteOffset: $0, as: UInt8.self)) }
        }
    }

    /// IEEE binary16 to Float32 (exact), including subnormals, infinities and NaN.
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign: UInt32 = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        if exponent == 0 {
            // Subnormal (or zero): mantissa * 2^-24.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }

    // MARK: Writing

    /// Writes `values` (F32 and I64) and `metadata` to `path` atomically.
    public static func save(_ values: [String: StateValue], metadata: [String: String] = [:], to path: String) throws {
        func fail(_ message: String) -> SpaceError { .file(path: path, message: message) }
        guard values["__metadata__"] == nil else { throw fail("'__metadata__' cannot be a tensor name") }
        let names = values.keys.sorted()
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let entries = metadata.keys.sorted().map { jsonString($0) + ":" + jsonString(metadata[$0]!) }
            parts.append("\"__metadata__\":{" + entries.joined(separator: ",") + "}")
        }
        var offset = 0
        for name in names {
            let v = values[name]!
            let bytes = v.shape.reduce(1, *) * (v.dtype == "I64" ? 8 : 4)
            parts.append(jsonString(name) + ":{\"dtype\":\"\(v.dtype)\",\"shape\":[" + v.shape.map(String.init).joined(separator: ",")
                         + "],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }

        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw fail("cannot create temporary file \(temporary): \(String(cString: strerror(errno)))") }
        var closed = false
        do {
            func put(_ p: UnsafeRawPointer?, _ count: Int) throws {
                var done = 0
                while done < count {
                    let r = write(fd, p! + done, count - done)
                    if r < 0 {
                        if errno == EINTR { continue }
                        throw fail("cannot write \(temporary): \(String(cString: strerror(errno)))")
                    }
                    done += r
                }
            }
            var length = UInt64(headerBytes.count).littleEndian
            try withUnsafeBytes(of: &length) { try put($0.baseAddress, 8) }
            try headerBytes.withUnsafeBytes { try put($0.baseAddress, $0.count) }
            for name in names {
                switch values[name]! {
                case .float(let t):
                    #if _endian(little)
                    if t.count > 0 { try put(t.pointer, 4 * t.count) }
                    #else
                    let le = t.array.map { $0.bitPattern.littleEndian }
                    try le.withUnsafeBytes { try put($0.baseAddress, $0.count) }
                    #endif
                case .int64(let t):
                    let le = t.values.map { $0.littleEndian }
                    if !le.isEmpty { try le.withUnsafeBytes { try put($0.baseAddress, $0.count) } }
                }
            }
            guard fsync(fd) == 0 else { throw fail("cannot flush \(temporary): \(String(cString: strerror(errno)))") }
            closed = true
            guard close(fd) == 0 else { throw fail("cannot close \(temporary): \(String(cString: strerror(errno)))") }
            guard rename(temporary, path) == 0 else { throw fail("cannot rename \(temporary) to it: \(String(cString: strerror(errno)))") }
        } catch {
            if !closed { close(fd) }
            unlink(temporary)
            throw error
        }
    }

    /// Writes Float32 tensors (see `save(_:metadata:to:)` for `StateValue`s).
    public static func save(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        try save(tensors.mapValues { StateValue.float($0) }, metadata: metadata, to: path)
    }

    /// A JSON string literal for `s`.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

// MARK: - A small strict JSON parser for safetensors headers

/// A parsed JSON value. Integers are kept apart from other numbers (shapes and offsets must be
/// integers); object members keep their order and duplicates (the caller rejects duplicates).
enum JSONValue {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case integer(Int)
    case number(String)
    case bool(Bool)
    case null

    /// A short rendering for error messages.
    var text: String {
        switch self {
        case .object: return "{...}"
        case .array(let a): return "[" + a.map(\.text).joined(separator: ", ") + "]"
        case .string(let s): return "\"\(s)\""
        case .integer(let i): return String(i)
        case .number(let n): return n
        case .bool(let b): return String(b)
        case .null: return "null"
        }
    }
}

/// Recursive-descent JSON (RFC 8259) over raw bytes, with a depth limit.
struct JSONParser {
    struct Failure: Error {
        let message: String
        let offset: Int
    }

    private let bytes: UnsafeRawBufferPointer
    private var i = 0
    private var depth = 0
    private static let maxDepth = 64

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// One value, surrounded by optional whitespace, and nothing else.
    mutating func parseDocument() throws -> JSONValue {
        skipSpace()
        let v = try parseValue()
        skipSpace()
        guard i == bytes.count else { throw Failure(message: "unexpected data after the JSON value", offset: i) }
        return v
    }

    private func failure(_ m: String) -> Failure { Failure(message: m, offset: i) }

    private var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    private mutating func skipSpace() {
        while let c = peek, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 }
    }

    private mutating func expect(_ c: UInt8) throws {
        guard peek == c else { throw failure(peek == nil ? "unexpected end, expected '\(Character(UnicodeScalar(c)))'" : "expected '\(Character(UnicodeScalar(c)))'") }
        i += 1
    }

    private mutating func parseValue() throws -> JSONValue {
        guard let c = peek else { throw failure("unexpected end, expected a value") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): return try parseNumber()
        default: throw failure("unexpected character '\(Character(UnicodeScalar(c)))'")
        }
    }

    private mutating func literal(_ word: String) throws {
        for b in word.utf8 {
            guard peek == b else { throw failure("invalid literal, expected \(word)") }
            i += 1
        }
    }

    private mutating func nest() throws {
        depth += 1
        guard depth <= JSONParser.maxDepth else { throw failure("nested deeper than \(JSONParser.maxDepth) levels") }
    }

    private mutating func parseObject() throws -> JSONValue {
        try nest()
        defer { depth -= 1 }
        i += 1
        var members: [(String, JSONValue)] = []
        skipSpace()
        if peek == UInt8(ascii: "}") { i += 1; return .object(members) }
        while true {
            skipSpace()
            guard peek == UInt8(ascii: "\"") else { throw failure("expected a string key") }
            let key = try parseString()
            skipSpace()
            try expect(UInt8(ascii: ":"))
            skipSpace()
            members.append((key, try parseValue()))
            skipSpace()
            if peek == UInt8(ascii: ",") { i += 1; continue }
            try expect(UInt8(ascii: "}"))
            return .object(members)
        }
    }

    private mutating func parseArray() throws -> JSONValue {
        try nest()
        defer { depth -= 1 }
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if peek == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try parseValue())
            skipSpace()
            if peek == UInt8(ascii: ",") { i += 1; continue }
            try expect(UInt8(ascii: "]"))
            return .array(items)
        }
    }

    private mutating func parseHex4() throws -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let c = peek else { throw failure("unexpected end in a \\u escape") }
            let d: UInt32
            switch c {
            case UInt8(ascii: "0") ... UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a") ... UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A") ... UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw failure("invalid hex digit in a \\u escape")
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    private mutating func parseString() throws -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw failure("unterminated string") }
            i += 1
            switch c {
            case UInt8(ascii: "\""):
                guard let s = String(bytes: out, encoding: .utf8) else { throw failure("string is not valid UTF-8") }
                return s
            case UInt8(ascii: "\\"):
                guard let e = peek else { throw failure("unterminated escape") }
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try parseHex4()
                    if (0xD800 ..< 0xDC00).contains(code) {
                        guard peek == UInt8(ascii: "\\") else { throw failure("unpaired surrogate in a \\u escape") }
                        i += 1
                        try expect(UInt8(ascii: "u"))
                        let low = try parseHex4()
                        guard (0xDC00 ..< 0xE000).contains(low) else { throw failure("invalid low surrogate in a \\u escape") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = UnicodeScalar(code) else { throw failure("invalid code point in a \\u escape") }
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: throw failure("invalid escape '\\\(Character(UnicodeScalar(e)))'")
                }
            case 0 ..< 0x20: throw failure("control character in a string")
            default: out.append(c)
            }
        }
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = i
        func digits() -> Int {
            let s = i
            while let c = peek, c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") { i += 1 }
            return i - s
        }
        if peek == UInt8(ascii: "-") { i += 1 }
        let intStart = i
        guard digits() > 0 else { throw failure("invalid number") }
        if bytes[intStart] == UInt8(ascii: "0") && i - intStart > 1 { throw Failure(message: "leading zero in a number", offset: intStart) }
        var isInteger = true
        if peek == UInt8(ascii: ".") {
            i += 1
            isInteger = false
            guard digits() > 0 else { throw failure("invalid number: no digits after '.'") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            i += 1
            isInteger = false
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw failure("invalid number: no digits in the exponent") }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start ..< i]), as: UTF8.self)
        if isInteger, let v = Int(text) { return .integer(v) }
        return .number(text)
    }
}
