import Foundation

/// A config as a typed tree: what the config structs encode to and decode from. Sections keep their
/// keys in declaration order (the reference's order), so printing and diffing follow it.
indirect enum ConfigValue: Equatable, Sendable {
    case int(Int)
    case float(Double)
    case bool(Bool)
    case string(String)
    case list([ConfigValue])
    case section(ConfigSection)

    /// The value as YAML flow text (sections excluded): `8`, `1.0e-05`, `true`, `'cpu'`, `[0, 1]`.
    var yamlText: String {
        switch self {
        case .int(let i): return String(i)
        case .float(let d): return Self.yamlFloat(d)
        case .bool(let b): return b ? "true" : "false"
        case .string(let s): return Self.yamlString(s)
        case .list(let items): return "[" + items.map(\.yamlText).joined(separator: ", ") + "]"
        case .section(let s): return "{" + s.keys.map { "\($0): \(s.values[$0]!.yamlText)" }.joined(separator: ", ") + "}"
        }
    }

    /// Shortest round-tripping text, always with a '.' so that YAML 1.1 readers (PyYAML) also see a float:
    /// 1e-05 becomes `1.0e-05`.
    static func yamlFloat(_ d: Double) -> String {
        if d.isNaN { return ".nan" }
        if d.isInfinite { return d > 0 ? ".inf" : "-.inf" }
        var s = d.description
        if !s.contains("."), let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) { s.insert(contentsOf: ".0", at: e) }
        return s
    }

    /// Single-quoted (quotes doubled), or double-quoted with escapes when the text holds control characters.
    static func yamlString(_ s: String) -> String {
        if s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            var out = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                case "\r": out += "\\r"
                default:
                    if u.value < 0x20 || u.value == 0x7f { out += String(format: "\\x%02X", u.value) } else { out.unicodeScalars.append(u) }
                }
            }
            return out + "\""
        }
        return "'" + s.replacingOccurrences(of: "'", with: "''") + "'"
    }
}

/// An ordered mapping of config keys.
struct ConfigSection: Equatable, Sendable {
    private(set) var keys: [String] = []
    private(set) var values: [String: ConfigValue] = [:]

    subscript(key: String) -> ConfigValue? {
        get { values[key] }
        set {
            if let newValue {
                if values[key] == nil { keys.append(key) }
                values[key] = newValue
            } else if values.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }
}

/// The type of each config key, read off the defaults: what a YAML value or an override must fit.
indirect enum ConfigType: Sendable {
    case int, float, bool, string
    case list(ConfigType)
    case section([(key: String, type: ConfigType)])

    init(of value: ConfigValue) {
        switch value {
        case .int: self = .int
        case .float: self = .float
        case .bool: self = .bool
        case .string: self = .string
        // A list's element type comes from its first default element; an empty default holds strings.
        case .list(let items): self = .list(items.first.map(ConfigType.init(of:)) ?? .string)
        case .section(let s): self = .section(s.keys.map { (key: $0, type: ConfigType(of: s.values[$0]!)) })
        }
    }

    /// How error messages name the type.
    var name: String {
        switch self {
        case .int: return "an integer"
        case .float: return "a number"
        case .bool: return "a boolean (True or False)"
        case .string: return "a string"
        case .list(let e):
            switch e {
            case .int: return "a list of integers, e.g. [0, 1]"
            case .float: return "a list of numbers"
            case .string: return "a list of strings, e.g. ['a', 'b']"
            default: return "a list"
            }
        case .section: return "a section (a mapping of keys)"
        }
    }

    func child(_ key: String) -> ConfigType? {
        guard case .section(let entries) = self else { return nil }
        return entries.first { $0.key == key }?.type
    }

    /// Every dotted key below this section, sections before their keys, in declaration order.
    func dottedKeys(prefix: String = "") -> [String] {
        guard case .section(let entries) = self else { return [] }
        return entries.flatMap { entry -> [String] in
            let full = prefix.isEmpty ? entry.key : prefix + "." + entry.key
            return [full] + entry.type.dottedKeys(prefix: full)
        }
    }
}

// MARK: - Encoding a Codable value into a ConfigValue

/// Encodes any `Encodable` (the config structs, `SpaceArch`) into a `ConfigValue`.
enum ConfigValueEncoder {
    static func encode<T: Encodable>(_ value: T) throws -> ConfigValue {
        let node = EncodingNode()
        try node.store(value, codingPath: [])
        return try node.value(codingPath: [])
    }
}

/// A node under construction; nested containers write into child nodes.
private final class EncodingNode {
    var leaf: ConfigValue?
    var keyed: [(key: String, node: EncodingNode)]?
    var unkeyed: [EncodingNode]?

    func child(_ key: String) -> EncodingNode {
        if let existing = keyed?.first(where: { $0.key == key }) { return existing.node }
        let n = EncodingNode()
        keyed = (keyed ?? []) + [(key: key, node: n)]
        return n
    }

    func appended() -> EncodingNode {
        let n = EncodingNode()
        unkeyed = (unkeyed ?? []) + [n]
        return n
    }

    func store<T: Encodable>(_ value: T, codingPath: [CodingKey]) throws {
        switch value {
        case let v as Int: leaf = .int(v)
        case let v as Bool: leaf = .bool(v)
        case let v as String: leaf = .string(v)
        case let v as Double: leaf = .float(v)
        // A Float keeps its own shortest text (0.15, not 0.15000000596).
        case let v as Float: leaf = .float(Double(v.description) ?? Double(v))
        default: try value.encode(to: NodeEncoder(node: self, codingPath: codingPath))
        }
    }

    func value(codingPath: [CodingKey]) throws -> ConfigValue {
        if let leaf { return leaf }
        if let keyed {
            var s = ConfigSection()
            for (k, n) in keyed { s[k] = try n.value(codingPath: codingPath + [PathKey(k)]) }
            return .section(s)
        }
        if let unkeyed { return .list(try unkeyed.enumerated().map { try $1.value(codingPath: codingPath + [PathKey($0)]) }) }
        throw EncodingError.invalidValue((), .init(codingPath: codingPath, debugDescription: "nothing was encoded"))
    }
}

/// A coding key made from a string or an index.
private struct PathKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ s: String) { stringValue = s }
    init(_ i: Int) { stringValue = String(i); intValue = i }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { self.init(intValue) }
}

private struct NodeEncoder: Encoder {
    let node: EncodingNode
    var codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if node.keyed == nil { node.keyed = [] }
        return KeyedEncodingContainer(KeyedNodeEncoder<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> UnkeyedEncodingContainer {
        if node.unkeyed == nil { node.unkeyed = [] }
        return UnkeyedNodeEncoder(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> SingleValueEncodingContainer { SingleNodeEncoder(node: node, codingPath: codingPath) }
}

private struct KeyedNodeEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: EncodingNode
    var codingPath: [CodingKey]

    private func put<T: Encodable>(_ v: T, _ key: Key) throws { try node.child(key.stringValue).store(v, codingPath: codingPath + [key]) }

    mutating func encodeNil(forKey key: Key) throws {
        throw EncodingError.invalidValue((), .init(codingPath: codingPath + [key], debugDescription: "config values cannot be null"))
    }
    mutating func encode(_ v: Bool, forKey k: Key) throws { try put(v, k) }
    mutating func encode(_ v: String, forKey k: Key) throws { try put(v, k) }
    mutating func encode(_ v: Double, forKey k: Key) throws { try put(v, k) }
    mutating func encode(_ v: Float, forKey k: Key) throws { try put(v, k) }
    mutating func encode(_ v: Int, forKey k: Key) throws { try put(v, k) }
    mutating func encode(_ v: Int8, forKey k: Key) throws { try put(v, k) }
    mutating func encode(_ v: Int16, forKey k: Key) throws { try put(v, k) }
    mutating func encode(_ v: Int32, forKey k: Key) throws { try put(v, k) }
    mutating func encode(_ v: Int64, forKey k: Key) throws { try put(v, k) }
    mutating func encode(_ v: UInt, forKey k: Key) throws { try put(v, k) }
    mutating func encode(_ v: UInt8, forKey k: Key) throws { try put(v, k) }
    mutating func encode(_ v: UInt16, forKey k: Key) throws { try put(v, k) }
    mutating func encode(_ v: UInt32, forKey k: Key) throws { try put(v, k) }
    mutating func encode(_ v: UInt64, forKey k: Key) throws { try put(v, k) }
    mutating func encode<T: Encodable>(_ v: T, forKey k: Key) throws { try put(v, k) }

    mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) -> KeyedEncodingContainer<N> {
        NodeEncoder(node: node.child(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
        NodeEncoder(node: node.child(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }
    mutating func superEncoder() -> Encoder { NodeEncoder(node: node.child("super"), codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> Encoder { NodeEncoder(node: node.child(key.stringValue), codingPath: codingPath + [key]) }
}

private struct UnkeyedNodeEncoder: UnkeyedEncodingContainer {
    let node: EncodingNode
    var codingPath: [CodingKey]
    var count: Int { node.unkeyed?.count ?? 0 }

    private func put<T: Encodable>(_ v: T) throws {
        let path = codingPath + [PathKey(count)]
        try node.appended().store(v, codingPath: path)
    }

    mutating func encodeNil() throws {
        throw EncodingError.invalidValue((), .init(codingPath: codingPath, debugDescription: "config values cannot be null"))
    }
    mutating func encode(_ v: Bool) throws { try put(v) }
    mutating func encode(_ v: String) throws { try put(v) }
    mutating func encode(_ v: Double) throws { try put(v) }
    mutating func encode(_ v: Float) throws { try put(v) }
    mutating func encode(_ v: Int) throws { try put(v) }
    mutating func encode(_ v: Int8) throws { try put(v) }
    mutating func encode(_ v: Int16) throws { try put(v) }
    mutating func encode(_ v: Int32) throws { try put(v) }
    mutating func encode(_ v: Int64) throws { try put(v) }
    mutating func encode(_ v: UInt) throws { try put(v) }
    mutating func encode(_ v: UInt8) throws { try put(v) }
    mutating func encode(_ v: UInt16) throws { try put(v) }
    mutating func encode(_ v: UInt32) throws { try put(v) }
    mutating func encode(_ v: UInt64) throws { try put(v) }
    mutating func encode<T: Encodable>(_ v: T) throws { try put(v) }

    mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) -> KeyedEncodingContainer<N> {
        NodeEncoder(node: node.appended(), codingPath: codingPath).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer {
        NodeEncoder(node: node.appended(), codingPath: codingPath).unkeyedContainer()
    }
    mutating func superEncoder() -> Encoder { NodeEncoder(node: node.appended(), codingPath: codingPath) }
}

private struct SingleNodeEncoder: SingleValueEncodingContainer {
    let node: EncodingNode
    var codingPath: [CodingKey]

    private func int<T: BinaryInteger>(_ v: T) throws {
        guard let i = Int(exactly: v) else {
            throw EncodingError.invalidValue(v, .init(codingPath: codingPath, debugDescription: "\(v) does not fit an Int"))
        }
        node.leaf = .int(i)
    }

    mutating func encodeNil() throws {
        throw EncodingError.invalidValue((), .init(codingPath: codingPath, debugDescription: "config values cannot be null"))
    }
    mutating func encode(_ v: Bool) throws { node.leaf = .bool(v) }
    mutating func encode(_ v: String) throws { node.leaf = .string(v) }
    mutating func encode(_ v: Double) throws { node.leaf = .float(v) }
    mutating func encode(_ v: Float) throws { node.leaf = .float(Double(v.description) ?? Double(v)) }
    mutating func encode(_ v: Int) throws { node.leaf = .int(v) }
    mutating func encode(_ v: Int8) throws { try int(v) }
    mutating func encode(_ v: Int16) throws { try int(v) }
    mutating func encode(_ v: Int32) throws { try int(v) }
    mutating func encode(_ v: Int64) throws { try int(v) }
    mutating func encode(_ v: UInt) throws { try int(v) }
    mutating func encode(_ v: UInt8) throws { try int(v) }
    mutating func encode(_ v: UInt16) throws { try int(v) }
    mutating func encode(_ v: UInt32) throws { try int(v) }
    mutating func encode(_ v: UInt64) throws { try int(v) }
    mutating func encode<T: Encodable>(_ v: T) throws { try node.store(v, codingPath: codingPath) }
}

// MARK: - Decoding a Codable value from a ConfigValue

/// Decodes any `Decodable` (the config structs, `SpaceArch`) from a `ConfigValue`. Ints are accepted
/// where floats are expected.
enum ConfigValueDecoder {
    static func decode<T: Decodable>(_ type: T.Type, from value: ConfigValue) throws -> T {
        try T(from: NodeDecoder(value: value, codingPath: []))
    }
}

private func mismatch(_ type: Any.Type, _ path: [CodingKey], _ value: ConfigValue) -> DecodingError {
    .typeMismatch(type, .init(codingPath: path, debugDescription: "expected \(type), found \(value.yamlText)"))
}

private struct NodeDecoder: Decoder {
    let value: ConfigValue
    var codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .section(let s) = value else { throw mismatch(ConfigSection.self, codingPath, value) }
        return KeyedDecodingContainer(KeyedNodeDecoder<Key>(section: s, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case .list(let items) = value else { throw mismatch([ConfigValue].self, codingPath, value) }
        return UnkeyedNodeDecoder(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { SingleNodeDecoder(value: value, codingPath: codingPath) }
}

private struct KeyedNodeDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let section: ConfigSection
    var codingPath: [CodingKey]
    var allKeys: [Key] { section.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { section[key.stringValue] != nil }

    private func get<T: Decodable>(_ key: Key) throws -> T {
        guard let v = section[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing config key"))
        }
        return try T(from: NodeDecoder(value: v, codingPath: codingPath + [key]))
    }

    func decodeNil(forKey key: Key) throws -> Bool { false }
    func decode(_ t: Bool.Type, forKey k: Key) throws -> Bool { try get(k) }
    func decode(_ t: String.Type, forKey k: Key) throws -> String { try get(k) }
    func decode(_ t: Double.Type, forKey k: Key) throws -> Double { try get(k) }
    func decode(_ t: Float.Type, forKey k: Key) throws -> Float { try get(k) }
    func decode(_ t: Int.Type, forKey k: Key) throws -> Int { try get(k) }
    func decode(_ t: Int8.Type, forKey k: Key) throws -> Int8 { try get(k) }
    func decode(_ t: Int16.Type, forKey k: Key) throws -> Int16 { try get(k) }
    func decode(_ t: Int32.Type, forKey k: Key) throws -> Int32 { try get(k) }
    func decode(_ t: Int64.Type, forKey k: Key) throws -> Int64 { try get(k) }
    func decode(_ t: UInt.Type, forKey k: Key) throws -> UInt { try get(k) }
    func decode(_ t: UInt8.Type, forKey k: Key) throws -> UInt8 { try get(k) }
    func decode(_ t: UInt16.Type, forKey k: Key) throws -> UInt16 { try get(k) }
    func decode(_ t: UInt32.Type, forKey k: Key) throws -> UInt32 { try get(k) }
    func decode(_ t: UInt64.Type, forKey k: Key) throws -> UInt64 { try get(k) }
    func decode<T: Decodable>(_ t: T.Type, forKey k: Key) throws -> T { try get(k) }

    private func child(_ key: Key) throws -> NodeDecoder {
        guard let v = section[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing config key"))
        }
        return NodeDecoder(value: v, codingPath: codingPath + [key])
    }
    func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> {
        try child(key).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { try child(key).unkeyedContainer() }
    func superDecoder() throws -> Decoder { NodeDecoder(value: .section(section), codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> Decoder { try child(key) }
}

private struct UnkeyedNodeDecoder: UnkeyedDecodingContainer {
    let items: [ConfigValue]
    var codingPath: [CodingKey]
    var currentIndex = 0
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    init(items: [ConfigValue], codingPath: [CodingKey]) { self.items = items; self.codingPath = codingPath }

    private mutating func next() throws -> NodeDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "list has only \(items.count) items"))
        }
        defer { currentIndex += 1 }
        return NodeDecoder(value: items[currentIndex], codingPath: codingPath + [PathKey(currentIndex)])
    }
    private mutating func get<T: Decodable>() throws -> T { try T(from: next()) }

    mutating func decodeNil() throws -> Bool { false }
    mutating func decode(_ t: Bool.Type) throws -> Bool { try get() }
    mutating func decode(_ t: String.Type) throws -> String { try get() }
    mutating func decode(_ t: Double.Type) throws -> Double { try get() }
    mutating func decode(_ t: Float.Type) throws -> Float { try get() }
    mutating func decode(_ t: Int.Type) throws -> Int { try get() }
    mutating func decode(_ t: Int8.Type) throws -> Int8 { try get() }
    mutating func decode(_ t: Int16.Type) throws -> Int16 { try get() }
    mutating func decode(_ t: Int32.Type) throws -> Int32 { try get() }
    mutating func decode(_ t: Int64.Type) throws -> Int64 { try get() }
    mutating func decode(_ t: UInt.Type) throws -> UInt { try get() }
    mutating func decode(_ t: UInt8.Type) throws -> UInt8 { try get() }
    mutating func decode(_ t: UInt16.Type) throws -> UInt16 { try get() }
    mutating func decode(_ t: UInt32.Type) throws -> UInt32 { try get() }
    mutating func decode(_ t: UInt64.Type) throws -> UInt64 { try get() }
    mutating func decode<T: Decodable>(_ t: T.Type) throws -> T { try get() }

    mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> {
        try next().container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> Decoder { try next() }
}

private struct SingleNodeDecoder: SingleValueDecodingContainer {
    let value: ConfigValue
    var codingPath: [CodingKey]

    private func int<T: BinaryInteger>(_ t: T.Type) throws -> T {
        guard case .int(let i) = value, let v = T(exactly: i) else { throw mismatch(t, codingPath, value) }
        return v
    }

    private func double() throws -> Double {
        switch value {
        case .float(let d): return d
        case .int(let i): return Double(i)
        default: throw mismatch(Double.self, codingPath, value)
        }
    }

    func decodeNil() -> Bool { false }
    func decode(_ t: Bool.Type) throws -> Bool {
        guard case .bool(let b) = value else { throw mismatch(t, codingPath, value) }
        return b
    }
    func decode(_ t: String.Type) throws -> String {
        guard case .string(let s) = value else { throw mismatch(t, codingPath, value) }
        return s
    }
    func decode(_ t: Double.Type) throws -> Double { try double() }
    func decode(_ t: Float.Type) throws -> Float { Float(try double()) }
    func decode(_ t: Int.Type) throws -> Int { try int(t) }
    func decode(_ t: Int8.Type) throws -> Int8 { try int(t) }
    func decode(_ t: Int16.Type) throws -> Int16 { try int(t) }
    func decode(_ t: Int32.Type) throws -> Int32 { try int(t) }
    func decode(_ t: Int64.Type) throws -> Int64 { try int(t) }
    func decode(_ t: UInt.Type) throws -> UInt { try int(t) }
    func decode(_ t: UInt8.Type) throws -> UInt8 { try int(t) }
    func decode(_ t: UInt16.Type) throws -> UInt16 { try int(t) }
    func decode(_ t: UInt32.Type) throws -> UInt32 { try int(t) }
    func decode(_ t: UInt64.Type) throws -> UInt64 { try int(t) }
    func decode<T: Decodable>(_ t: T.Type) throws -> T { try T(from: NodeDecoder(value: value, codingPath: codingPath)) }
}
