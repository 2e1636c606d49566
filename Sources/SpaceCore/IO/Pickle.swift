// A strict unpickler for PyTorch checkpoints.
//
// Python's pickle format is a small stack machine whose GLOBAL and REDUCE opcodes normally import and
// call arbitrary Python functions. This unpickler never executes anything: a global is a symbolic
// (module, name) pair, admitted only if the caller's allow-list names it, and REDUCE / NEWOBJ / BUILD /
// BINPERSID are interpreted by the caller's hooks (for checkpoints: OrderedDict, tensor rebuilding
// and storages, see TorchCheckpoint.swift). It implements the binary opcodes that `pickle.dump` with
// protocols 2 to 5 emits for dicts, lists, tuples, numbers, strings and bytes; text-protocol opcodes,
// sets, out-of-band buffers, extension codes and anything unknown are refused. Every refusal, and any
// truncated or malformed data, throws `SpaceError.file` naming the file, the pickle, the opcode and
// its byte offset.
//
// While unpickling, containers are reference-type boxes (pickle's memo shares and mutates them, as
// Python's objects are); the result is then converted into `PickleValue`, a plain value tree, with
// cycles and excessive nesting refused. All boxes of one load live in a `PickleArena`, which empties
// them one by one when it is released, so deep or cyclic structures can neither leak nor overflow
// the stack in deinitialisers.

// MARK: - The values a pickle produces

/// A dictionary key in a checkpoint: strings (state dicts, configs) or integers (optimizer state is
/// keyed by parameter index). Python's `True`/`False` keys equal 1/0 and become `.int`.
public enum PickleKey: Hashable, CustomStringConvertible {
    case string(String)
    case int(Int)

    public var description: String {
        switch self {
        case .string(let s): return "'\(s)'"
        case .int(let i): return String(i)
        }
    }
}

/// A Python dict or `collections.OrderedDict`: entries keep their insertion order.
public struct PickleDict {
    public private(set) var keys: [PickleKey] = []
    public private(set) var values: [PickleValue] = []
    private var positions: [PickleKey: Int] = [:]

    public init() {}

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public subscript(key: PickleKey) -> PickleValue? { positions[key].map { values[$0] } }
    public subscript(key: String) -> PickleValue? { self[.string(key)] }
    public subscript(key: Int) -> PickleValue? { self[.int(key)] }

    /// The entries in insertion order.
    public var entries: [(key: PickleKey, value: PickleValue)] { (0..<keys.count).map { (keys[$0], values[$0]) } }

    /// Sets `value` for `key`; an existing key keeps its position (as in Python).
    public mutating func set(_ value: PickleValue, for key: PickleKey) {
        if let i = positions[key] {
            values[i] = value
        } else {
            positions[key] = keys.count
            keys.append(key)
            values.append(value)
        }
    }
}

/// A value read from a pickle. Tensors are materialised (`StateValue`: Float32 or int64).
public enum PickleValue: CustomStringConvertible {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer outside `Int`'s range: minimal little-endian two's-complement bytes (pickle's LONG1/LONG4).
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list([PickleValue])
    case tuple([PickleValue])
    case dict(PickleDict)
    case tensor(StateValue)
    /// An allow-listed global used as a plain value (a dtype such as `torch.float32`).
    case global(module: String, name: String)

    /// The Python type name, for messages.
    public var typeName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .tensor: return "tensor"
        case .global: return "global"
        }
    }

    /// The type name with an article, for messages: "an int", "a dict", "None".
    public var withArticle: String {
        switch typeName {
        case "None": return "None"
        case "int": return "an int"
        default: return "a " + typeName
        }
    }

    public var intValue: Int? { if case .int(let i) = self { return i }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    /// A float, or an int converted to Double.
    public var doubleValue: Double? {
        switch self {
        case .float(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var dictValue: PickleDict? { if case .dict(let d) = self { return d }; return nil }
    /// The elements of a list or a tuple.
    public var items: [PickleValue]? {
        switch self {
        case .list(let a), .tuple(let a): return a
        default: return nil
        }
    }
    public var tensorValue: StateValue? { if case .tensor(let t) = self { return t }; return nil }
    public var isNone: Bool { if case .none = self { return true }; return false }

    /// The entry `key` of a dict (nil for other values or a missing key).
    public subscript(key: String) -> PickleValue? { dictValue?[key] }

    /// A Python-like rendering, abbreviated past a few elements.
    public var description: String {
        func list(_ a: [PickleValue]) -> String {
            a.prefix(6).map(\.description).joined(separator: ", ") + (a.count > 6 ? ", ... (\(a.count) items)" : "")
        }
        switch self {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .bigInt(let b): return "int(0x" + b.reversed().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() + ")"
        case .float(let d): return String(d)
        case .string(let s): return "'\(s)'"
        case .bytes(let b): return "b<\(b.count) bytes>"
        case .list(let a): return "[" + list(a) + "]"
        case .tuple(let a): return "(" + list(a) + (a.count == 1 ? ",)" : ")")
        case .dict(let d):
            let head = d.entries.prefix(6).map { "\($0.key): \($0.value)" }.joined(separator: ", ")
            return "{" + head + (d.count > 6 ? ", ... (\(d.count) entries)" : "") + "}"
        case .tensor(let t): return t.description
        case .global(let m, let n): return "<global \(m).\(n)>"
        }
    }
}

// MARK: - The machine's internal objects

/// A list, tuple or dict under construction. Reference semantics, like Python's objects, because the
/// memo shares them and APPEND/SETITEM(S)/BUILD mutate them after they were memoised.
final class PickleBox {
    enum Kind { case list, tuple, dict }
    let kind: Kind
    /// List or tuple elements; for a dict, the values (parallel to `keys`).
    var items: [PickleNode] = []
    var keys: [PickleKey] = []
    var positions: [PickleKey: Int] = [:]
    /// The state BUILD gave a dict (an OrderedDict's `__dict__`, e.g. a state dict's `_metadata`). Kept, not exposed.
    var attributes: PickleNode?

    init(_ kind: Kind, items: [PickleNode] = []) {
        self.kind = kind
        self.items = items
    }

    var typeName: String {
        switch kind {
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        }
    }

    func setItem(_ value: PickleNode, for key: PickleKey) {
        if let i = positions[key] {
            items[i] = value
        } else {
            positions[key] = keys.count
            keys.append(key)
            items.append(value)
        }
    }

    func clear() {
        items = []
        keys = []
        positions = [:]
        attributes = nil
    }
}

/// A value on the pickle machine's stack or in its memo.
enum PickleNode {
    case none
    case bool(Bool)
    case int(Int)
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case box(PickleBox)
    case global(module: String, name: String)
    /// A PyTorch storage, from a persistent id.
    case storage(TorchStorageRef)
    /// A PyTorch tensor: a view of a storage, materialised when the result is converted.
    case tensor(TorchTensorRef)

    var typeName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .box(let b): return b.typeName
        case .global(let m, let n): return "global \(m).\(n)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }

    /// The type name with an article, for messages: "an int", "a dict", "None".
    var withArticle: String {
        switch typeName {
        case "None": return "None"
        case "int": return "an int"
        default: return "a " + typeName
        }
    }

    /// The box when this is a container of `kind`.
    func box(_ kind: PickleBox.Kind) -> PickleBox? {
        if case .box(let b) = self, b.kind == kind { return b }
        return nil
    }
}

/// Owns every box made during one load and empties them all when released (see the file comment).
final class PickleArena {
    private var boxes: [PickleBox] = []

    func make(_ kind: PickleBox.Kind, items: [PickleNode] = []) -> PickleBox {
        let b = PickleBox(kind, items: items)
        boxes.append(b)
        return b
    }

    deinit {
        for b in boxes { b.clear() }
    }
}

/// A reason a hook or the machine refuses the data; the unpickler adds the file, pickle and offset.
struct PickleFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// What the caller lets a pickle do: which globals it may name, what calling them means, and how
/// persistent ids resolve. Hooks throw `PickleFailure`.
struct PickleHooks {
    /// Whether GLOBAL / STACK_GLOBAL may name `module.name`.
    var allowsGlobal: (_ module: String, _ name: String) -> Bool
    /// A short list of the allowed globals, for the refusal message.
    var allowedDescription: String
    /// REDUCE (`newObject` false) or NEWOBJ (true) of an allowed global with `arguments`.
    var call: (_ module: String, _ name: String, _ arguments: [PickleNode], _ newObject: Bool, _ arena: PickleArena) throws -> PickleNode
    /// BINPERSID / PERSID; nil refuses persistent ids.
    var persistentLoad: ((_ pid: PickleNode) throws -> PickleNode)?

    /// Plain data only: no globals, no persistent ids.
    static let plainData = PickleHooks(
        allowsGlobal: { _, _ in false }, allowedDescription: "none in this pickle",
        call: { m, n, _, _, _ in throw PickleFailure("cannot call \(m).\(n)") }, persistentLoad: nil)
}

// MARK: - The machine

/// Reads one pickle from `bytes`, starting at `position`; `position` ends just after its STOP.
struct Unpickler {
    let bytes: UnsafeRawBufferPointer
    let path: String
    /// Names the pickle in messages ("data.pkl", "the main pickle").
    let what: String
    /// Where `bytes` starts in the file, so that messages give file offsets.
    let fileOffset: Int
    let hooks: PickleHooks
    let arena: PickleArena
    private(set) var position: Int

    init(bytes: UnsafeRawBufferPointer, position: Int = 0, fileOffset: Int = 0, path: String, what: String,
         hooks: PickleHooks, arena: PickleArena) {
        self.bytes = bytes
        self.position = position
        self.fileOffset = fileOffset
        self.path = path
        self.what = what
        self.hooks = hooks
        self.arena = arena
    }

    /// Protocol-2..5 opcodes this machine knows by name (for messages), whether supported or refused.
    static func opcodeName(_ op: UInt8) -> String? {
        switch op {
        case 0x28: return "MARK"
        case 0x2E: return "STOP"
        case 0x30: return "POP"
        case 0x31: return "POP_MARK"
        case 0x32: return "DUP"
        case 0x46: return "FLOAT"
        case 0x49: return "INT"
        case 0x4A: return "BININT"
        case 0x4B: return "BININT1"
        case 0x4C: return "LONG"
        case 0x4D: return "BININT2"
        case 0x4E: return "NONE"
        case 0x50: return "PERSID"
        case 0x51: return "BINPERSID"
        case 0x52: return "REDUCE"
        case 0x53: return "STRING"
        case 0x54: return "BINSTRING"
        case 0x55: return "SHORT_BINSTRING"
        case 0x56: return "UNICODE"
        case 0x58: return "BINUNICODE"
        case 0x61: return "APPEND"
        case 0x62: return "BUILD"
        case 0x63: return "GLOBAL"
        case 0x64: return "DICT"
        case 0x7D: return "EMPTY_DICT"
        case 0x65: return "APPENDS"
        case 0x67: return "GET"
        case 0x68: return "BINGET"
        case 0x69: return "INST"
        case 0x6A: return "LONG_BINGET"
        case 0x6C: return "LIST"
        case 0x5D: return "EMPTY_LIST"
        case 0x6F: return "OBJ"
        case 0x70: return "PUT"
        case 0x71: return "BINPUT"
        case 0x72: return "LONG_BINPUT"
        case 0x73: return "SETITEM"
        case 0x74: return "TUPLE"
        case 0x29: return "EMPTY_TUPLE"
        case 0x75: return "SETITEMS"
        case 0x47: return "BINFLOAT"
        case 0x80: return "PROTO"
        case 0x81: return "NEWOBJ"
        case 0x82: return "EXT1"
        case 0x83: return "EXT2"
        case 0x84: return "EXT4"
        case 0x85: return "TUPLE1"
        case 0x86: return "TUPLE2"
        case 0x87: return "TUPLE3"
        case 0x88: return "NEWTRUE"
        case 0x89: return "NEWFALSE"
        case 0x8A: return "LONG1"
        case 0x8B: return "LONG4"
        case 0x42: return "BINBYTES"
        case 0x43: return "SHORT_BINBYTES"
        case 0x8C: return "SHORT_BINUNICODE"
        case 0x8D: return "BINUNICODE8"
        case 0x8E: return "BINBYTES8"
        case 0x8F: return "EMPTY_SET"
        case 0x90: return "ADDITEMS"
        case 0x91: return "FROZENSET"
        case 0x92: return "NEWOBJ_EX"
        case 0x93: return "STACK_GLOBAL"
        case 0x94: return "MEMOIZE"
        case 0x95: return "FRAME"
        case 0x96: return "BYTEARRAY8"
        case 0x97: return "NEXT_BUFFER"
        case 0x98: return "READONLY_BUFFER"
        default: return nil
        }
    }

    private static func describe(_ op: UInt8) -> String {
        let code = "0x" + String(op, radix: 16, uppercase: false)
        if let name = opcodeName(op) { return "\(name) (\(code))" }
        return "unknown opcode \(code)"
    }

    /// Runs the machine to STOP and returns the pickled object.
    mutating func load() throws -> PickleNode {
        var stack: [PickleNode] = []
        var marks: [Int] = []
        var memo: [Int: PickleNode] = [:]
        var opStart = position
        var op: UInt8?

        // Reading operands.
        func need(_ n: Int) throws {
            guard n >= 0, n <= bytes.count - position else {
                throw PickleFailure("truncated: needs \(n) bytes at byte \(fileOffset + position) but the data ends at byte \(fileOffset + bytes.count)")
            }
        }
        func u8() throws -> UInt8 { try need(1); defer { position += 1 }; return bytes[position] }
        func u16() throws -> UInt16 { try need(2); defer { position += 2 }; return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt16.self)) }
        func u32() throws -> UInt32 { try need(4); defer { position += 4 }; return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self)) }
        func u64() throws -> UInt64 { try need(8); defer { position += 8 }; return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self)) }
        func length(_ v: UInt64) throws -> Int {
            guard v <= UInt64(bytes.count - position) else {
                throw PickleFailure("truncated: an operand of \(v) bytes at byte \(fileOffset + position) runs past the end of the data (byte \(fileOffset + bytes.count))")
            }
            return Int(v)
        }
        func raw(_ n: Int) throws -> UnsafeRawBufferPointer {
            try need(n)
            defer { position += n }
            return UnsafeRawBufferPointer(rebasing: bytes[position ..< position + n])
        }
        func utf8(_ n: Int) throws -> String {
            guard let s = String(validating: try raw(n), as: UTF8.self) else { throw PickleFailure("string of \(n) bytes is not valid UTF-8") }
            return s
        }
        func line() throws -> String {
            var end = position
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            guard end < bytes.count else { throw PickleFailure("truncated: a text operand has no terminating newline") }
            let s = try utf8(end - position)
            position += 1
            return s
        }
        // Two's-complement little-endian integers of any length.
        func long(_ n: Int) throws -> PickleNode {
            let b = Array(try raw(n))
            guard !b.isEmpty else { return .int(0) }
            let negative = b[b.count - 1] & 0x80 != 0
            var trimmed = b
            // Drop redundant sign bytes (Python writes minimal encodings, but accept others).
            while trimmed.count > 1 {
                let top = trimmed[trimmed.count - 1], next = trimmed[trimmed.count - 2]
                if (top == 0x00 && next & 0x80 == 0) || (top == 0xFF && next & 0x80 != 0) { trimmed.removeLast() } else { break }
            }
            if trimmed.count <= 8 {
                var v: UInt64 = negative ? ~0 : 0
                for (i, byte) in trimmed.enumerated() {
                    v &= ~(UInt64(0xFF) << (8 * UInt64(i)))
                    v |= UInt64(byte) << (8 * UInt64(i))
                }
                return .int(Int(Int64(bitPattern: v)))
            }
            return .bigInt(trimmed)
        }

        // The stack. The current frame is everything above the innermost MARK.
        var frameStart: Int { marks.last ?? 0 }
        func push(_ n: PickleNode) { stack.append(n) }
        func pop() throws -> PickleNode {
            guard stack.count > frameStart else { throw PickleFailure("stack underflow") }
            return stack.removeLast()
        }
        func top() throws -> PickleNode {
            guard stack.count > frameStart else { throw PickleFailure("stack underflow") }
            return stack[stack.count - 1]
        }
        func popMark() throws -> [PickleNode] {
            guard let m = marks.popLast() else { throw PickleFailure("no MARK to pop to") }
            let items = Array(stack[m...])
            stack.removeSubrange(m...)
            return items
        }
        func key(_ n: PickleNode) throws -> PickleKey {
            switch n {
            case .string(let s): return .string(s)
            case .int(let i): return .int(i)
            case .bool(let b): return .int(b ? 1 : 0)
            default: throw PickleFailure("dict key of type \(n.typeName) is not supported (only str and int keys)")
            }
        }
        func dictTarget(_ n: PickleNode) throws -> PickleBox {
            guard let d = n.box(.dict) else { throw PickleFailure("SETITEM(S) target is \(n.withArticle), not a dict") }
            return d
        }
        func listTarget(_ n: PickleNode) throws -> PickleBox {
            guard let l = n.box(.list) else { throw PickleFailure("APPEND(S) target is \(n.withArticle), not a list") }
            return l
        }
        func global(_ module: String, _ name: String) throws -> PickleNode {
            guard hooks.allowsGlobal(module, name) else {
                throw PickleFailure("refused global '\(module).\(name)': only \(hooks.allowedDescription) may appear (nothing is ever imported or executed)")
            }
            return .global(module: module, name: name)
        }
        func memoGet(_ i: Int) throws -> PickleNode {
            guard let v = memo[i] else { throw PickleFailure("memo entry \(i) was never stored") }
            return v
        }
        func call(newObject: Bool) throws {
            let args = try pop()
            let callee = try pop()
            guard case .global(let m, let n) = callee else {
                throw PickleFailure("\(newObject ? "NEWOBJ" : "REDUCE") of \(callee.withArticle), not an allowed global")
            }
            guard let tuple = args.box(.tuple) else {
                throw PickleFailure("\(newObject ? "NEWOBJ" : "REDUCE") of \(m).\(n) with arguments of type \(args.typeName), not a tuple")
            }
            push(try hooks.call(m, n, tuple.items, newObject, arena))
        }
        func persistent(_ pid: PickleNode) throws {
            guard let load = hooks.persistentLoad else { throw PickleFailure("persistent ids are not allowed in this pickle") }
            push(try load(pid))
        }

        do {
            while true {
                opStart = position
                op = nil
                guard position < bytes.count else {
                    throw PickleFailure("truncated: the data ends at byte \(fileOffset + position) before the pickle's STOP")
                }
                let code = bytes[position]
                op = code
                position += 1
                switch code {
                case 0x80: // PROTO
                    let v = try u8()
                    guard v <= 5 else { throw PickleFailure("unsupported pickle protocol \(v)") }
                case 0x95: // FRAME: advisory framing, only checked
                    _ = try length(try u64())
                case 0x2E: // STOP
                    guard marks.isEmpty, stack.count == 1 else {
                        throw PickleFailure("STOP with \(stack.count) objects on the stack and \(marks.count) open MARKs")
                    }
                    return stack[0]
                case 0x28: // MARK
                    marks.append(stack.count)
                case 0x30: // POP
                    if stack.count > frameStart { stack.removeLast() } else { _ = try popMark() }
                case 0x31: // POP_MARK
                    _ = try popMark()
                case 0x29: // EMPTY_TUPLE
                    push(.box(arena.make(.tuple)))
                case 0x5D: // EMPTY_LIST
                    push(.box(arena.make(.list)))
                case 0x7D: // EMPTY_DICT
                    push(.box(arena.make(.dict)))
                case 0x74: // TUPLE
                    push(.box(arena.make(.tuple, items: try popMark())))
                case 0x85, 0x86, 0x87: // TUPLE1..3
                    let n = Int(code - 0x84)
                    guard stack.count - frameStart >= n else { throw PickleFailure("stack underflow") }
                    let items = Array(stack[(stack.count - n)...])
                    stack.removeLast(n)
                    push(.box(arena.make(.tuple, items: items)))
                case 0x6C: // LIST
                    push(.box(arena.make(.list, items: try popMark())))
                case 0x64: // DICT
                    let items = try popMark()
                    guard items.count % 2 == 0 else { throw PickleFailure("DICT with an odd number (\(items.count)) of keys and values") }
                    let d = arena.make(.dict)
                    for i in stride(from: 0, to: items.count, by: 2) { d.setItem(items[i + 1], for: try key(items[i])) }
                    push(.box(d))
                case 0x61: // APPEND
                    let v = try pop()
                    try listTarget(try top()).items.append(v)
                case 0x65: // APPENDS
                    let items = try popMark()
                    try listTarget(try top()).items.append(contentsOf: items)
                case 0x73: // SETITEM
                    let v = try pop()
                    let k = try key(try pop())
                    try dictTarget(try top()).setItem(v, for: k)
                case 0x75: // SETITEMS
                    let items = try popMark()
                    guard items.count % 2 == 0 else { throw PickleFailure("SETITEMS with an odd number (\(items.count)) of keys and values") }
                    let d = try dictTarget(try top())
                    for i in stride(from: 0, to: items.count, by: 2) { d.setItem(items[i + 1], for: try key(items[i])) }
                case 0x4A: // BININT
                    push(.int(Int(Int32(bitPattern: try u32()))))
                case 0x4B: // BININT1
                    push(.int(Int(try u8())))
                case 0x4D: // BININT2
                    push(.int(Int(try u16())))
                case 0x8A: // LONG1
                    push(try long(Int(try u8())))
                case 0x8B: // LONG4
                    let n = Int32(bitPattern: try u32())
                    guard n >= 0 else { throw PickleFailure("LONG4 with negative length \(n)") }
                    push(try long(try length(UInt64(n))))
                case 0x47: // BINFLOAT, big-endian
                    try need(8)
                    let bits = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
                    position += 8
                    push(.float(Double(bitPattern: bits)))
                case 0x4E: // NONE
                    push(.none)
                case 0x88: // NEWTRUE
                    push(.bool(true))
                case 0x89: // NEWFALSE
                    push(.bool(false))
                case 0x8C, 0x55: // SHORT_BINUNICODE, SHORT_BINSTRING
                    push(.string(try utf8(Int(try u8()))))
                case 0x58: // BINUNICODE
                    push(.string(try utf8(try length(UInt64(try u32())))))
                case 0x8D: // BINUNICODE8
                    push(.string(try utf8(try length(try u64()))))
                case 0x54: // BINSTRING (signed length)
                    let n = Int32(bitPattern: try u32())
                    guard n >= 0 else { throw PickleFailure("BINSTRING with negative length \(n)") }
                    push(.string(try utf8(try length(UInt64(n)))))
                case 0x43: // SHORT_BINBYTES
                    push(.bytes(Array(try raw(Int(try u8())))))
                case 0x42: // BINBYTES
                    push(.bytes(Array(try raw(try length(UInt64(try u32()))))))
                case 0x8E: // BINBYTES8
                    push(.bytes(Array(try raw(try length(try u64())))))
                case 0x71: // BINPUT
                    memo[Int(try u8())] = try top()
                case 0x72: // LONG_BINPUT
                    memo[Int(try u32())] = try top()
                case 0x94: // MEMOIZE
                    memo[memo.count] = try top()
                case 0x68: // BINGET
                    push(try memoGet(Int(try u8())))
                case 0x6A: // LONG_BINGET
                    push(try memoGet(Int(try u32())))
                case 0x63: // GLOBAL
                    let module = try line()
                    let name = try line()
                    push(try global(module, name))
                case 0x93: // STACK_GLOBAL
                    let name = try pop(), module = try pop()
                    guard case .string(let n) = name, case .string(let m) = module else {
                        throw PickleFailure("STACK_GLOBAL of \(module.withArticle) and \(name.withArticle), not two strings")
                    }
                    push(try global(m, n))
                case 0x52: // REDUCE
                    try call(newObject: false)
                case 0x81: // NEWOBJ
                    try call(newObject: true)
                case 0x62: // BUILD
                    let state = try pop()
                    let target = try top()
                    guard let d = target.box(.dict) else { throw PickleFailure("BUILD on \(target.withArticle) is not supported") }
                    switch state {
                    case .none: break
                    case .box(let s) where s.kind == .dict: d.attributes = state
                    default: throw PickleFailure("BUILD of a dict with state of type \(state.typeName)")
                    }
                case 0x51: // BINPERSID
                    try persistent(try pop())
                case 0x50: // PERSID
                    try persistent(.string(try line()))
                default:
                    if Unpickler.opcodeName(code) != nil { throw PickleFailure("opcode not allowed in a checkpoint") }
                    throw PickleFailure("not a pickle opcode (corrupted data?)")
                }
            }
        } catch let f as PickleFailure {
            let at = op.map { "\(Unpickler.describe($0)) at byte \(fileOffset + opStart)" } ?? "byte \(fileOffset + opStart)"
            throw SpaceError.file(path: path, message: "\(what): \(f.message) [\(at)]")
        }
    }
}

// MARK: - From machine objects to values

/// Converts machine objects into `PickleValue`s: each box and tensor once (shared objects stay
/// shared, so a pickle cannot blow up exponentially), refusing cycles and nesting deeper than `maxDepth`.
struct PickleConverter {
    static let maxDepth = 100
    let path: String
    let materialize: (TorchTensorRef) throws -> StateValue
    private var done: [ObjectIdentifier: (value: PickleValue, height: Int)] = [:]
    private var tensors: [ObjectIdentifier: StateValue] = [:]
    private var active: Set<ObjectIdentifier> = []

    init(path: String, materialize: @escaping (TorchTensorRef) throws -> StateValue) {
        self.path = path
        self.materialize = materialize
    }

    mutating func convert(_ node: PickleNode) throws -> PickleValue {
        try convert(node, depth: 0).value
    }

    private mutating func convert(_ node: PickleNode, depth: Int) throws -> (value: PickleValue, height: Int) {
        func tooDeep() -> SpaceError { .file(path: path, message: "pickle: objects nest deeper than \(PickleConverter.maxDepth) levels") }
        switch node {
        case .none: return (.none, 0)
        case .bool(let b): return (.bool(b), 0)
        case .int(let i): return (.int(i), 0)
        case .bigInt(let b): return (.bigInt(b), 0)
        case .float(let d): return (.float(d), 0)
        case .string(let s): return (.string(s), 0)
        case .bytes(let b): return (.bytes(b), 0)
        case .global(let m, let n): return (.global(module: m, name: n), 0)
        case .storage(let s):
            throw SpaceError.file(path: path, message: "pickle: storage '\(s.key)' appears outside a tensor; bare storages are not supported")
        case .tensor(let t):
            let id = ObjectIdentifier(t)
            if let v = tensors[id] { return (.tensor(v), 0) }
            let v = try materialize(t)
            tensors[id] = v
            return (.tensor(v), 0)
        case .box(let b):
            let id = ObjectIdentifier(b)
            if let r = done[id] {
                guard depth + r.height <= PickleConverter.maxDepth else { throw tooDeep() }
                return r
            }
            guard depth < PickleConverter.maxDepth else { throw tooDeep() }
            guard active.insert(id).inserted else {
                throw SpaceError.file(path: path, message: "pickle: a \(b.typeName) contains itself; cyclic objects are not supported")
            }
            var height = 0
            let value: PickleValue
            switch b.kind {
            case .list, .tuple:
                var out: [PickleValue] = []
                out.reserveCapacity(b.items.count)
                for item in b.items {
                    let r = try convert(item, depth: depth + 1)
                    out.append(r.value)
                    height = max(height, r.height + 1)
                }
                value = b.kind == .list ? .list(out) : .tuple(out)
            case .dict:
                var d = PickleDict()
                for (k, item) in zip(b.keys, b.items) {
                    let r = try convert(item, depth: depth + 1)
                    d.set(r.value, for: k)
                    height = max(height, r.height + 1)
                }
                value = .dict(d)
            }
            active.remove(id)
            done[id] = (value, max(height, 1))
            return (value, max(height, 1))
        }
    }
}
