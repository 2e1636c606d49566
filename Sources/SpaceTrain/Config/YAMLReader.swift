import CYAML

/// A position in a YAML text, 1-based as editors show it.
struct YAMLMark: Equatable, Sendable {
    var line: Int
    var column: Int

    init(_ m: yaml_mark_t) { line = Int(m.line) + 1; column = Int(m.column) + 1 }
    init(line: Int, column: Int) { self.line = line; self.column = column }
}

/// A scalar as written: its text, whether it was quoted (or tagged `!!str`), and where it starts.
struct YAMLScalar: Equatable, Sendable {
    var text: String
    var quoted: Bool
    var mark: YAMLMark

    /// YAML's null spellings, for an unquoted scalar (an empty value is null too).
    var isNull: Bool { !quoted && ["", "~", "null", "Null", "NULL"].contains(text) }
}

/// The tree libyaml's event stream describes: scalars are kept as text and typed later, against the
/// config's schema.
indirect enum YAMLNode: Sendable {
    case scalar(YAMLScalar)
    case sequence([YAMLNode], YAMLMark)
    case mapping([(key: YAMLScalar, value: YAMLNode)], YAMLMark)

    var mark: YAMLMark {
        switch self {
        case .scalar(let s): return s.mark
        case .sequence(_, let m), .mapping(_, let m): return m
        }
    }

    /// The value as a short flow-style text, for error messages.
    var summary: String {
        switch self {
        case .scalar(let s): return s.quoted ? "'\(s.text)'" : s.text
        case .sequence(let items, _): return "[" + items.map(\.summary).joined(separator: ", ") + "]"
        case .mapping(let pairs, _): return "{" + pairs.map { "\($0.key.text): \($0.value.summary)" }.joined(separator: ", ") + "}"
        }
    }
}

/// Reads one YAML document with libyaml's event API. Anchors and aliases are resolved by copying;
/// duplicate keys, non-scalar keys and several documents are errors (a config is one mapping).
enum YAMLReader {
    /// The document's root node, or nil for an empty document. `source` names the text in errors.
    static func parse(_ text: String, source: String) throws -> YAMLNode? {
        let bytes = Array(text.utf8)
        if bytes.isEmpty { return nil }
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        let event = UnsafeMutablePointer<yaml_event_t>.allocate(capacity: 1)
        defer { parser.deallocate(); event.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else {
            throw ConfigError.malformedYAML(source: source, line: 0, column: 0, message: "libyaml could not start a parser")
        }
        defer { yaml_parser_delete(parser) }
        return try bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
            var builder = TreeBuilder(source: source)
            while true {
                guard yaml_parser_parse(parser, event) == 1 else { throw parserError(parser.pointee, source: source) }
                defer { yaml_event_delete(event) }
                if try builder.consume(event.pointee) { break }
            }
            return builder.root
        }
    }

    private static func parserError(_ p: yaml_parser_t, source: String) -> ConfigError {
        let problem = p.problem.map { String(cString: $0) } ?? "unknown error"
        let context = p.context.map { String(cString: $0) + ": " } ?? ""
        let mark = YAMLMark(p.problem_mark)
        return .malformedYAML(source: source, line: mark.line, column: mark.column, message: context + problem)
    }
}

/// Turns the event stream into a `YAMLNode`, one open collection per stack frame.
private struct TreeBuilder {
    private enum Frame {
        case sequence([YAMLNode], YAMLMark, anchor: String?)
        case mapping([(key: YAMLScalar, value: YAMLNode)], pendingKey: YAMLScalar?, YAMLMark, anchor: String?)
    }

    let source: String
    private(set) var root: YAMLNode?
    private var stack: [Frame] = []
    private var anchors: [String: YAMLNode] = [:]
    private var documents = 0

    init(source: String) { self.source = source }

    private func error(_ mark: YAMLMark, _ message: String) -> ConfigError {
        .malformedYAML(source: source, line: mark.line, column: mark.column, message: message)
    }

    private static func string(_ p: UnsafeMutablePointer<yaml_char_t>?, length: Int? = nil) -> String? {
        guard let p else { return nil }
        if let length {
            return String(decoding: UnsafeBufferPointer(start: p, count: length), as: UTF8.self)
        }
        return String(cString: p)
    }

    /// Handles one event; true at the end of the stream.
    mutating func consume(_ e: yaml_event_t) throws -> Bool {
        let mark = YAMLMark(e.start_mark)
        switch e.type {
        case YAML_STREAM_START_EVENT, YAML_DOCUMENT_END_EVENT, YAML_NO_EVENT:
            return false
        case YAML_STREAM_END_EVENT:
            return true
        case YAML_DOCUMENT_START_EVENT:
            documents += 1
            if documents > 1 { throw error(mark, "expected a single document, found a second one") }
            return false
        case YAML_SCALAR_EVENT:
            let s = e.data.scalar
            let text = Self.string(s.value, length: Int(s.length)) ?? ""
            let tag = Self.string(s.tag)
            let quoted = s.style != YAML_PLAIN_SCALAR_STYLE || tag == "tag:yaml.org,2002:str"
            let node = YAMLNode.scalar(YAMLScalar(text: text, quoted: quoted, mark: mark))
            if let anchor = Self.string(s.anchor) { anchors[anchor] = node }
            try add(node)
        case YAML_ALIAS_EVENT:
            let name = Self.string(e.data.alias.anchor) ?? ""
            guard let node = anchors[name] else { throw error(mark, "unknown alias '*\(name)'") }
            try add(node)
        case YAML_SEQUENCE_START_EVENT:
            stack.append(.sequence([], mark, anchor: Self.string(e.data.sequence_start.anchor)))
        case YAML_MAPPING_START_EVENT:
            stack.append(.mapping([], pendingKey: nil, mark, anchor: Self.string(e.data.mapping_start.anchor)))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            let node: YAMLNode, anchor: String?
            switch stack.removeLast() {
            case let .sequence(items, m, a): node = .sequence(items, m); anchor = a
            case let .mapping(pairs, _, m, a): node = .mapping(pairs, m); anchor = a
            }
            if let anchor { anchors[anchor] = node }
            try add(node)
        default:
            throw error(mark, "unexpected YAML event \(e.type.rawValue)")
        }
        return false
    }

    private mutating func add(_ node: YAMLNode) throws {
        guard let top = stack.popLast() else { root = node; return }
        switch top {
        case .sequence(var items, let m, let a):
            items.append(node)
            stack.append(.sequence(items, m, anchor: a))
        case .mapping(var pairs, let pending, let m, let a):
            if let key = pending {
                pairs.append((key: key, value: node))
                stack.append(.mapping(pairs, pendingKey: nil, m, anchor: a))
            } else {
                guard case .scalar(let key) = node else { throw error(node.mark, "a mapping key must be a plain name, got \(node.summary)") }
                if pairs.contains(where: { $0.key.text == key.text }) {
                    throw error(key.mark, "duplicate key '\(key.text)'")
                }
                stack.append(.mapping(pairs, pendingKey: key, m, anchor: a))
            }
        }
    }
}
