#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A PyTorch checkpoint (`torch.save` output, `.pth`), read without Python and without executing
/// anything.
///
/// Both container formats are read:
/// - **zip** (PyTorch >= 1.6): a ZIP archive of stored records under one folder `<name>/`:
///   `data.pkl` (the pickled object), `data/<key>` (the raw bytes of each storage), `byteorder`
///   ("little" or "big", little when absent), `version`;
/// - **legacy** (PyTorch <= 1.5, the format of the SPACE authors' published checkpoints): a sequence
///   of pickles (the magic number 0x1950a86a20f9469cfc6c, protocol version 1001, a sys_info dict,
///   the object, the list of storage keys), then for each key an 8-byte little-endian element count
///   and the storage's little-endian bytes.
///
/// The object is unpickled by a strict unpickler (Pickle.swift) whose only globals are
/// `collections.OrderedDict`, the tensor and parameter rebuilders of `torch._utils`, the typed
/// storage classes (`torch.FloatStorage`, ...) and the dtypes (`torch.float32`, ...); persistent ids
/// must be storages. Anything else throws `SpaceError.file` naming the file and the reason.
///
/// Tensors are materialised at load, following `torch._utils._rebuild_tensor_v2(storage,
/// storage_offset, size, stride, ...)`: any strides (copied out row-major), offsets into shared
/// storages, every view checked to stay inside its storage. float32 tensors become `Tensor`s bit
/// for bit; float64, float16 and bfloat16 are converted to Float32 `Tensor`s; int64 tensors become
/// `Int64Tensor`s bit for bit; int32, int16, int8, uint8 and bool are widened to `Int64Tensor`s.
/// A tensor referenced twice in the pickle is materialised once and shared.
public struct TorchCheckpoint {
    public enum Format: String {
        case zip
        case legacy
    }

    /// The file this was read from.
    public let path: String
    public let format: Format
    /// The unpickled object: for SPACE, `{'model': state_dict, 'optimizer_fg': ..., 'optimizer_bg': ...,
    /// 'epoch': int, 'global_step': int}`; for `torch.save(model.state_dict())`, the state dict.
    public let root: PickleValue

    /// Reads and checks the checkpoint at `path`.
    public static func load(path: String) throws -> TorchCheckpoint {
        try MappedFile.withBytes(path: path) { try parse($0, path: path) }
    }

    /// Parses the bytes of a whole checkpoint file; `path` names it in errors.
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> TorchCheckpoint {
        func fail(_ message: String) -> SpaceError { .file(path: path, message: message) }
        guard bytes.count > 0 else { throw fail("empty file: not a PyTorch checkpoint") }
        if bytes.count >= 4 && bytes[0] == 0x50 && bytes[1] == 0x4B && ((bytes[2], bytes[3]) == (3, 4) || (bytes[2], bytes[3]) == (5, 6)) {
            return try TorchCheckpointReader(bytes: bytes, path: path).readZip()
        }
        if bytes[0] == 0x80 {
            return try TorchCheckpointReader(bytes: bytes, path: path).readLegacy()
        }
        if bytes.count >= 262, Array(bytes[257 ..< 262]) == Array("ustar".utf8) {
            throw fail("a tar archive: the tar checkpoint format of PyTorch < 0.4 is not supported")
        }
        throw fail("not a PyTorch checkpoint: starts with byte 0x\(String(bytes[0], radix: 16)), neither a zip archive ('PK') nor a pickle (0x80)")
    }

    init(path: String, format: Format, root: PickleValue) {
        self.path = path
        self.format = format
        self.root = root
    }

    // MARK: Accessors

    /// The root dict's entry `key` (nil if the root is not a dict or has no such entry).
    public subscript(key: String) -> PickleValue? { root[key] }

    /// The root dict's integer entry `key` (nil if absent or not an integer).
    public func integer(_ key: String) -> Int? { root[key]?.intValue }

    /// The reference checkpoint's `epoch`.
    public var epoch: Int? { integer("epoch") }

    /// The reference checkpoint's `global_step`.
    public var globalStep: Int? { integer("global_step") }

    /// The tensors of the state dict, by key (see `stateDictEntries(key:)`).
    public func stateDict(key: String? = "model") throws -> [String: StateValue] {
        var out: [String: StateValue] = [:]
        for (k, v) in try stateDictEntries(key: key) { out[k] = v }
        return out
    }

    /// The tensors of the state dict in the file's order.
    ///
    /// With `key` (default "model", the reference's checkpoint layout) and a root dict that has that
    /// entry, the entry is the state dict; otherwise the root itself must be a dict of tensors
    /// (`torch.save(model.state_dict())`). With `key` nil the root is always taken. Every key must be
    /// a string and every value a tensor; anything else throws naming the entry.
    public func stateDictEntries(key: String? = "model") throws -> [(key: String, value: StateValue)] {
        func fail(_ message: String) -> SpaceError { .file(path: path, message: message) }
        guard case .dict(let top) = root else {
            throw fail("the checkpoint holds \(root.withArticle), not a dict, so it has no state dict")
        }
        let allTensors = top.values.allSatisfy { $0.tensorValue != nil }
        var dict = top
        var label = "the checkpoint's root dict"
        if let key, let inner = top[key], !(inner.tensorValue != nil && allTensors) {
            guard case .dict(let d) = inner else {
                throw fail("the checkpoint's entry '\(key)' is \(inner.withArticle), not a state dict")
            }
            dict = d
            label = "the checkpoint's entry '\(key)'"
        } else if let key, !allTensors {
            let keys = top.keys.prefix(10).map(\.description).joined(separator: ", ")
            throw fail("the checkpoint has no entry '\(key)' and its root dict is not a state dict (it holds \(keys)\(top.count > 10 ? ", ..." : ""))")
        }
        var out: [(key: String, value: StateValue)] = []
        out.reserveCapacity(dict.count)
        for (k, v) in dict.entries {
            guard case .string(let name) = k else { throw fail("\(label) has a non-string key \(k), so it is not a state dict") }
            guard let t = v.tensorValue else { throw fail("\(label) maps '\(name)' to \(v.withArticle), not a tensor") }
            out.append((name, t))
        }
        return out
    }
}

// MARK: - Storages and tensors as the pickle names them

/// The dtypes of PyTorch's typed storages.
enum TorchDType: CaseIterable {
    case float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool

    var size: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    /// The legacy storage class that pickles storages of this dtype (`torch.FloatStorage`).
    var storageClass: String {
        switch self {
        case .float32: return "FloatStorage"
        case .float64: return "DoubleStorage"
        case .float16: return "HalfStorage"
        case .bfloat16: return "BFloat16Storage"
        case .int64: return "LongStorage"
        case .int32: return "IntStorage"
        case .int16: return "ShortStorage"
        case .int8: return "CharStorage"
        case .uint8: return "ByteStorage"
        case .bool: return "BoolStorage"
        }
    }

    static let byStorageClass: [String: TorchDType] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.storageClass, $0) })
    /// `torch.<name>` dtype objects, admitted as inert values.
    static let dtypeNames: Set<String> = ["float32", "float", "float64", "double", "float16", "half", "bfloat16",
                                          "int64", "long", "int32", "int", "int16", "short", "int8", "uint8", "bool"]
}

/// A storage from a persistent id: `count` elements of `dtype`, starting `offset` elements into the
/// data stored under `key` (offset is non-zero only for legacy storage views).
final class TorchStorageRef {
    let key: String
    let dtype: TorchDType
    let offset: Int
    let count: Int

    init(key: String, dtype: TorchDType, offset: Int, count: Int) {
        self.key = key
        self.dtype = dtype
        self.offset = offset
        self.count = count
    }
}

/// A tensor view of a storage: element (i0, i1, ...) is storage element `offset + sum(i_k * strides[k])`.
/// Validated at construction to stay inside the storage.
final class TorchTensorRef {
    let storage: TorchStorageRef
    let offset: Int
    let shape: [Int]
    let strides: [Int]
    let count: Int

    init(storage: TorchStorageRef, offset: Int, shape: [Int], strides: [Int]) throws {
        guard shape.count == strides.count else {
            throw PickleFailure("tensor of size \(shapeString(shape)) has \(strides.count) strides")
        }
        guard offset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw PickleFailure("tensor with negative offset, size or stride (offset \(offset), size \(shapeString(shape)), stride \(shapeString(strides)))")
        }
        var count = 1
        var last = offset
        var overflow = false
        for (n, s) in zip(shape, strides) {
            let (c, o1) = count.multipliedReportingOverflow(by: n)
            count = c
            overflow = overflow || o1
            if n > 0 {
                let (span, o2) = (n - 1).multipliedReportingOverflow(by: s)
                let (l, o3) = last.addingReportingOverflow(span)
                last = l
                overflow = overflow || o2 || o3
            }
        }
        guard !overflow else { throw PickleFailure("tensor of size \(shapeString(shape)) and stride \(shapeString(strides)) is too large") }
        if count > 0 && last >= storage.count {
            throw PickleFailure("tensor of size \(shapeString(shape)), stride \(shapeString(strides)) at offset \(offset) reaches element \(last) of storage '\(storage.key)', which has \(storage.count) elements")
        }
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.strides = strides
        self.count = count
    }
}

// MARK: - Reading

/// One load: the file's bytes, where each storage's data lies, and the pickle hooks for PyTorch.
private final class TorchCheckpointReader {
    /// The legacy format's magic number 0x1950a86a20f9469cfc6c, as minimal little-endian bytes.
    static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    static let legacyProtocolVersion = 1001

    let bytes: UnsafeRawBufferPointer
    let path: String
    let arena = PickleArena()
    /// Storages by key (zip) or by root / view key (legacy).
    var storages: [String: TorchStorageRef] = [:]
    /// Byte ranges in `bytes` of each storage key's data, and the element count it holds.
    var data: [String: (range: Range<Int>, count: Int)] = [:]
    var bigEndian = false
    /// Materialised output bytes left: tensors may exceed their storage only by broadcasting
    /// (stride 0) and by widening dtypes; this bounds what a hostile file can make us allocate.
    var budget: Int

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
        budget = (1 << 30) + 16 * bytes.count
    }

    func fail(_ message: String) -> SpaceError { .file(path: path, message: message) }

    // MARK: Zip

    func readZip() throws -> TorchCheckpoint {
        let zip = try ZipArchive(bytes: bytes, path: path)
        guard let first = zip.entries.first else { throw fail("empty zip archive: no data.pkl record, not a PyTorch checkpoint") }
        guard let slash = first.name.firstIndex(of: "/") else {
            throw fail("zip record '\(first.name)' is not inside a folder, so this is not a PyTorch checkpoint (no <name>/data.pkl)")
        }
        let prefix = String(first.name[...slash])
        guard let pickle = zip.entry(prefix + "data.pkl") else {
            throw fail("zip archive has no '\(prefix)data.pkl' record: not a PyTorch checkpoint")
        }
        if let order = zip.entry(prefix + "byteorder") {
            let r = try zip.dataRange(of: order)
            switch String(decoding: UnsafeRawBufferPointer(rebasing: bytes[r]), as: UTF8.self) {
            case "little": bigEndian = false
            case "big": bigEndian = true
            case let other: throw fail("zip record '\(order.name)' says byte order '\(other)', not 'little' or 'big'")
            }
        }
        let pickleRange = try zip.dataRange(of: pickle)
        let hooks = torchHooks { [unowned self] pid in
            let (dtype, key, count) = try self.storageID(pid, legacy: false)
            if let known = self.storages[key] {
                guard known.dtype == dtype, known.count == count else {
                    throw PickleFailure("storage '\(key)' is named as both \(known.dtype.storageClass)[\(known.count)] and \(dtype.storageClass)[\(count)]")
                }
                return .storage(known)
            }
            guard let record = zip.entry(prefix + "data/" + key) else {
                throw PickleFailure("storage '\(key)' has no record '\(prefix)data/\(key)' in the archive")
            }
            let range = try zip.dataRange(of: record)
            let (bytesNeeded, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, bytesNeeded == range.count else {
                throw PickleFailure("storage '\(key)' should hold \(count) \(dtype.storageClass) elements but its record has \(range.count) bytes")
            }
            let ref = TorchStorageRef(key: key, dtype: dtype, offset: 0, count: count)
            self.storages[key] = ref
            self.data[key] = (range, count)
            return .storage(ref)
        }
        var unpickler = Unpickler(bytes: UnsafeRawBufferPointer(rebasing: bytes[pickleRange]), path: path,
                                  what: "data.pkl", hooks: hooks, arena: arena)
        let node = try unpickler.load()
        return TorchCheckpoint(path: path, format: .zip, root: try convert(node))
    }

    // MARK: Legacy

    func readLegacy() throws -> TorchCheckpoint {
        var position = 0
        func unpickle(_ what: String, _ hooks: PickleHooks) throws -> PickleNode {
            var u = Unpickler(bytes: bytes, position: position, path: path, what: what, hooks: hooks, arena: arena)
            let node = try u.load()
            position = u.position
            return node
        }
        let magic = try unpickle("the magic-number pickle", .plainData)
        guard case .bigInt(let m) = magic, m == TorchCheckpointReader.legacyMagic else {
            throw fail("not a PyTorch checkpoint: the first pickle holds \(describe(magic)), not the legacy magic number 0x1950a86a20f9469cfc6c")
        }
        let version = try unpickle("the protocol-version pickle", .plainData)
        guard case .int(TorchCheckpointReader.legacyProtocolVersion) = version else {
            throw fail("legacy checkpoint with protocol version \(describe(version)); only \(TorchCheckpointReader.legacyProtocolVersion) exists")
        }
        let sysInfo = try unpickle("the sys_info pickle", .plainData)
        guard sysInfo.box(.dict) != nil else { throw fail("legacy checkpoint: sys_info is \(sysInfo.withArticle), not a dict") }

        let hooks = torchHooks { [unowned self] pid in .storage(try self.legacyStorage(pid)) }
        let node = try unpickle("the main pickle", hooks)

        let keysNode = try unpickle("the storage-key pickle", .plainData)
        guard let keyList = keysNode.box(.list) else {
            throw fail("legacy checkpoint: the storage-key pickle holds \(keysNode.withArticle), not a list")
        }
        // Then each storage in that order: an int64 element count, then the data.
        for item in keyList.items {
            guard case .string(let key) = item else { throw fail("legacy checkpoint: a storage key is \(item.withArticle), not a string") }
            guard let root = storages[key], root.offset == 0 else {
                throw fail("legacy checkpoint: storage '\(key)' is listed at byte \(position) but no tensor in the pickle uses it")
            }
            guard data[key] == nil else { throw fail("legacy checkpoint: storage '\(key)' is listed twice") }
            guard bytes.count - position >= 8 else {
                throw fail("truncated: storage '\(key)' should start at byte \(position) but the file ends at byte \(bytes.count)")
            }
            let stored = Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: Int64.self))
            guard stored == Int64(root.count) else {
                throw fail("legacy checkpoint: storage '\(key)' at byte \(position) records \(stored) elements, the pickle says \(root.count) (corrupted?)")
            }
            let start = position + 8
            let byteCount = root.count * root.dtype.size
            guard byteCount <= bytes.count - start else {
                throw fail("truncated: storage '\(key)' needs bytes [\(start), \(start + byteCount)) but the file ends at byte \(bytes.count)")
            }
            data[key] = (start ..< start + byteCount, root.count)
            position = start + byteCount
        }
        return TorchCheckpoint(path: path, format: .legacy, root: try convert(node))
    }

    /// A legacy persistent id: a root storage, or (with view metadata, PyTorch < 1.0) a view of one.
    private func legacyStorage(_ pid: PickleNode) throws -> TorchStorageRef {
        let (dtype, key, count) = try storageID(pid, legacy: true)
        let root: TorchStorageRef
        if let known = storages[key] {
            guard known.offset == 0, known.dtype == dtype, known.count == count else {
                throw PickleFailure("storage '\(key)' is named as both \(known.dtype.storageClass)[\(known.count)] and \(dtype.storageClass)[\(count)]")
            }
            root = known
        } else {
            let (_, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow else { throw PickleFailure("storage '\(key)' of \(count) elements is too large") }
            root = TorchStorageRef(key: key, dtype: dtype, offset: 0, count: count)
            storages[key] = root
        }
        guard let items = pid.box(.tuple)?.items, items.count == 6, case .box(let view) = items[5] else { return root }
        guard view.kind == .tuple, view.items.count == 3, case .string(let viewKey) = view.items[0],
              case .int(let offset) = view.items[1], case .int(let size) = view.items[2] else {
            throw PickleFailure("storage '\(key)': view metadata is not (view_key, offset, size)")
        }
        guard offset >= 0, size >= 0, offset <= count, size <= count - offset else {
            throw PickleFailure("storage view '\(viewKey)' [\(offset), +\(size)) lies outside storage '\(key)' of \(count) elements")
        }
        if let known = storages[viewKey] {
            guard known.key == key, known.offset == offset, known.count == size, known.dtype == dtype else {
                throw PickleFailure("storage view '\(viewKey)' is named twice with different extents")
            }
            return known
        }
        let ref = TorchStorageRef(key: key, dtype: dtype, offset: offset, count: size)
        storages[viewKey] = ref
        return ref
    }

    /// Checks a persistent id `('storage', torch.<X>Storage, key, location, numel[, view_metadata])`.
    private func storageID(_ pid: PickleNode, legacy: Bool) throws -> (TorchDType, String, Int) {
        guard let items = pid.box(.tuple)?.items, !items.isEmpty else {
            throw PickleFailure("persistent id is \(pid.withArticle), not a tuple")
        }
        guard case .string(let kind) = items[0], kind == "storage" else {
            throw PickleFailure("persistent id of type \(describe(items[0])) refused: only storages are allowed")
        }
        guard items.count == 5 || (legacy && items.count == 6) else {
            throw PickleFailure("storage persistent id with \(items.count) fields, expected \(legacy ? "5 or 6" : "5")")
        }
        guard case .global("torch", let cls) = items[1], let dtype = TorchDType.byStorageClass[cls] else {
            throw PickleFailure("storage persistent id with storage type \(describe(items[1])), not a torch.<Type>Storage")
        }
        guard case .string(let key) = items[2] else { throw PickleFailure("storage key is \(items[2].withArticle), not a string") }
        guard case .string = items[3] else { throw PickleFailure("storage '\(key)': location is \(items[3].withArticle), not a string") }
        guard case .int(let count) = items[4], count >= 0 else {
            throw PickleFailure("storage '\(key)': element count \(describe(items[4])) is not a non-negative integer")
        }
        if items.count == 6 {
            switch items[5] {
            case .none: break
            case .box(let b) where b.kind == .tuple: break
            default: throw PickleFailure("storage '\(key)': view metadata is \(items[5].withArticle)")
            }
        }
        return (dtype, key, count)
    }

    // MARK: Pickle hooks

    static let rebuilders: Set<String> = ["_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state"]

    private func torchHooks(_ persistentLoad: @escaping (PickleNode) throws -> PickleNode) -> PickleHooks {
        PickleHooks(
            allowsGlobal: { module, name in
                switch module {
                case "collections": return name == "OrderedDict"
                case "torch._utils": return TorchCheckpointReader.rebuilders.contains(name)
                case "torch": return TorchDType.byStorageClass[name] != nil || TorchDType.dtypeNames.contains(name)
                default: return false
                }
            },
            allowedDescription: "collections.OrderedDict, torch._utils._rebuild_tensor(_v2), torch._utils._rebuild_parameter(_with_state), torch.<Type>Storage and torch dtypes",
            call: { module, name, args, newObject, arena in
                try TorchCheckpointReader.call(module, name, args, newObject: newObject, arena: arena)
            },
            persistentLoad: persistentLoad)
    }

    /// What calling an allowed global means. Nothing is executed: each case builds the value itself.
    private static func call(_ module: String, _ name: String, _ args: [PickleNode], newObject: Bool, arena: PickleArena) throws -> PickleNode {
        let callee = "\(module).\(name)"
        func int(_ n: PickleNode, _ what: String) throws -> Int {
            guard case .int(let i) = n else { throw PickleFailure("\(callee): \(what) is \(n.withArticle), not an int") }
            return i
        }
        func ints(_ n: PickleNode, _ what: String) throws -> [Int] {
            guard let t = n.box(.tuple) ?? n.box(.list) else { throw PickleFailure("\(callee): \(what) is \(n.withArticle), not a tuple") }
            return try t.items.map { try int($0, what + " entry") }
        }
        func tensor(_ n: PickleNode) throws -> PickleNode {
            guard case .tensor = n else { throw PickleFailure("\(callee): data is \(n.withArticle), not a tensor") }
            return n
        }
        func hooks(_ n: PickleNode) throws {
            guard let d = n.box(.dict), d.items.isEmpty else {
                throw PickleFailure("\(callee): backward hooks must be an empty OrderedDict, got \(n.withArticle)")
            }
        }
        func requiresGrad(_ n: PickleNode) throws {
            guard case .bool = n else { throw PickleFailure("\(callee): requires_grad is \(n.withArticle), not a bool") }
        }

        if module == "collections" && name == "OrderedDict" {
            // OrderedDict() or OrderedDict([(key, value), ...]).
            let d = arena.make(.dict)
            if args.isEmpty { return .box(d) }
            guard args.count == 1, !newObject, let pairs = args[0].box(.list) ?? args[0].box(.tuple) else {
                throw PickleFailure("\(callee) with \(args.count) arguments; only OrderedDict() and OrderedDict(list of pairs) are supported")
            }
            for p in pairs.items {
                guard let kv = p.box(.tuple) ?? p.box(.list), kv.items.count == 2 else {
                    throw PickleFailure("\(callee): an item is \(p.withArticle), not a (key, value) pair")
                }
                let key: PickleKey
                switch kv.items[0] {
                case .string(let s): key = .string(s)
                case .int(let i): key = .int(i)
                default: throw PickleFailure("\(callee): key of type \(kv.items[0].typeName) is not supported")
                }
                d.setItem(kv.items[1], for: key)
            }
            return .box(d)
        }
        guard !newObject else { throw PickleFailure("NEWOBJ of \(callee) is not supported") }
        guard module == "torch._utils" else {
            throw PickleFailure("\(callee) may appear only as a value (a storage type or dtype); it cannot be called")
        }
        switch name {
        case "_rebuild_tensor_v2", "_rebuild_tensor":
            // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
            let v2 = name == "_rebuild_tensor_v2"
            guard v2 ? (args.count == 6 || args.count == 7) : args.count == 4 else {
                throw PickleFailure("\(callee) with \(args.count) arguments, expected \(v2 ? "6 or 7" : "4")")
            }
            guard case .storage(let storage) = args[0] else {
                throw PickleFailure("\(callee): the storage argument is \(args[0].withArticle), not a storage")
            }
            if v2 {
                try requiresGrad(args[4])
                try hooks(args[5])
                if args.count == 7 {
                    switch args[6] {
                    case .none: break
                    case .box(let b) where b.kind == .dict: break
                    default: throw PickleFailure("\(callee): metadata is \(args[6].withArticle), not a dict")
                    }
                }
            }
            let ref = try TorchTensorRef(storage: storage, offset: try int(args[1], "storage_offset"),
                                         shape: try ints(args[2], "size"), strides: try ints(args[3], "stride"))
            return .tensor(ref)
        case "_rebuild_parameter", "_rebuild_parameter_with_state":
            // (data, requires_grad, backward_hooks[, state]): the parameter is its data.
            let withState = name == "_rebuild_parameter_with_state"
            guard args.count == (withState ? 4 : 3) else {
                throw PickleFailure("\(callee) with \(args.count) arguments, expected \(withState ? 4 : 3)")
            }
            try requiresGrad(args[1])
            try hooks(args[2])
            if withState {
                switch args[3] {
                case .none: break
                case .box(let b) where b.kind == .dict: break
                default: throw PickleFailure("\(callee): state is \(args[3].withArticle), not a dict")
                }
            }
            return try tensor(args[0])
        default:
            throw PickleFailure("\(callee) cannot be called")
        }
    }

    private func describe(_ n: PickleNode) -> String {
        switch n {
        case .int(let i): return String(i)
        case .string(let s): return "'\(s)'"
        case .global(let m, let name): return "\(m).\(name)"
        case .bigInt(let b): return "0x" + b.reversed().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        default: return n.typeName
        }
    }

    // MARK: Materialising tensors

    private func convert(_ node: PickleNode) throws -> PickleValue {
        var converter = PickleConverter(path: path) { [unowned self] t in try self.materialize(t) }
        return try converter.convert(node)
    }

    /// Copies a tensor view out of its storage's data, row-major, converting the dtype.
    private func materialize(_ t: TorchTensorRef) throws -> StateValue {
        let s = t.storage
        guard let stored = data[s.key] else {
            throw fail("storage '\(s.key)' used by a tensor has no data in the file (truncated?)")
        }
        // Re-check the extent against the data actually present (construction checked the pickle's numbers).
        guard s.offset + s.count <= stored.count else {
            throw fail("storage '\(s.key)': view [\(s.offset), +\(s.count)) exceeds its \(stored.count) stored elements")
        }
        let outSize = s.dtype == .float32 || s.dtype == .float64 || s.dtype == .float16 || s.dtype == .bfloat16 ? 4 : 8
        let (outBytes, overflow) = t.count.multipliedReportingOverflow(by: outSize)
        guard !overflow, outBytes <= budget else {
            throw fail("tensor of size \(shapeString(t.shape)) would need \(overflow ? "too many" : String(outBytes)) bytes, more than a checkpoint of \(bytes.count) bytes can reasonably hold")
        }
        budget -= outBytes
        let size = s.dtype.size
        let base = bytes.baseAddress! + stored.range.lowerBound + (s.offset + t.offset) * size
        let native = !bigEndian   // every supported host is little-endian

        func runs(_ body: (_ dst: Int, _ src: Int, _ n: Int, _ step: Int) -> Void) {
            TorchCheckpointReader.forEachRun(shape: t.shape, strides: t.strides, body)
        }
        func load<T: FixedWidthInteger>(_ element: Int, _: T.Type) -> T {
            let v = base.loadUnaligned(fromByteOffset: element * size, as: T.self)
            return native ? T(littleEndian: v) : T(bigEndian: v)
        }
        func floats(_ convert: (Int) -> Float) -> StateValue {
            let out = Storage(count: t.count)
            let p = out.pointer
            runs { dst, src, n, step in for i in 0..<n { p[dst + i] = convert(src + i * step) } }
            return .float(Tensor(shape: t.shape, storage: out))
        }
        func ints(_ convert: (Int) -> Int64) throws -> StateValue {
            let values = [Int64](unsafeUninitializedCapacity: t.count) { buffer, initialized in
                let p = buffer.baseAddress
                runs { dst, src, n, step in
                    if s.dtype == .int64 && step == 1 && native {
                        UnsafeMutableRawPointer(p! + dst).copyMemory(from: base + src * 8, byteCount: n * 8)
                    } else {
                        for i in 0..<n { p![dst + i] = convert(src + i * step) }
                    }
                }
                initialized = t.count
            }
            return .int64(try Int64Tensor(values, shape: t.shape))
        }

        switch s.dtype {
        case .float32:
            let out = Storage(count: t.count)
            let p = out.pointer
            runs { dst, src, n, step in
                if step == 1 && native {
                    UnsafeMutableRawPointer(p + dst).copyMemory(from: base + src * 4, byteCount: n * 4)
                } else {
                    for i in 0..<n { p[dst + i] = Float(bitPattern: load(src + i * step, UInt32.self)) }
                }
            }
            return .float(Tensor(shape: t.shape, storage: out))
        case .float64: return floats { Float(Double(bitPattern: load($0, UInt64.self))) }
        case .float16: return floats { TorchCheckpointReader.halfToFloat(load($0, UInt16.self)) }
        case .bfloat16: return floats { Float(bitPattern: UInt32(load($0, UInt16.self)) << 16) }
        case .int64: return try ints { Int64(bitPattern: load($0, UInt64.self)) }
        case .int32: return try ints { Int64(Int32(bitPattern: load($0, UInt32.self))) }
        case .int16: return try ints { Int64(Int16(bitPattern: load($0, UInt16.self))) }
        case .int8: return try ints { Int64(Int8(bitPattern: load($0, UInt8.self))) }
        case .uint8, .bool: return try ints { Int64(load($0, UInt8.self)) }
        }
    }

    /// Calls `body(dst, src, n, step)` for each maximal run of a strided view, in row-major order:
    /// output elements dst..<dst+n are storage elements src, src+step, ... (relative to the view's offset).
    /// Size-1 dimensions are dropped and dimensions that are contiguous with their inner neighbour
    /// are merged, so a contiguous tensor is a single run.
    static func forEachRun(shape: [Int], strides: [Int], _ body: (_ dst: Int, _ src: Int, _ n: Int, _ step: Int) -> Void) {
        if shape.contains(0) { return }
        var dims: [(size: Int, stride: Int)] = []
        for (n, s) in zip(shape, strides) where n != 1 {
            if let last = dims.last, last.stride == n * s {
                dims[dims.count - 1] = (last.size * n, s)
            } else {
                dims.append((n, s))
            }
        }
        guard let inner = dims.popLast() else { body(0, 0, 1, 1); return }
        var index = [Int](repeating: 0, count: dims.count)
        var src = 0, dst = 0
        while true {
            body(dst, src, inner.size, inner.stride)
            dst += inner.size
            // Advance the odometer over the outer dimensions.
            var d = dims.count - 1
            while d >= 0 {
                index[d] += 1
                src += dims[d].stride
                if index[d] < dims[d].size { break }
                src -= dims[d].stride * dims[d].size
                index[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }

    /// IEEE binary16 to Float32, exactly (subnormals, infinities, NaN payloads).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        if exponent == 0 {
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        return Float(bitPattern: sign | (exponent + 112) << 23 | (mantissa << 13))
    }
}
