// The module system: parameters, buffers and children found by reflection, keyed like PyTorch's
// state_dict, plus the property wrappers that rename a key or mark a buffer.

/// A layer that maps one tensor to one tensor (what `Sequential` chains).
public protocol UnaryLayer: AnyObject {
    func callAsFunction(_ x: Tensor) throws -> Tensor
}

/// A module that is a unary layer: what `Sequential` holds.
public typealias Layer = Module & UnaryLayer

/// The base class of every layer and model: owns parameters, buffers and child modules.
///
/// **How state is found.** The stored properties of a subclass are read by reflection (`Mirror`),
/// in declaration order, superclass properties first:
/// - a stored `Tensor` (or `Tensor?` holding a value) is a *parameter*, keyed by the property name;
/// - a stored `Module` (or `Module?`) is a *child*; its keys are prefixed with the property name
///   (`img_encoder.enc.0.weight`);
/// - a stored `[Module]` or `[Tensor]` gives indexed keys, `blocks.0`, `blocks.1`, ...;
/// - `@Buffer var x: Tensor` (or an `Int64Tensor`) is a *buffer*: saved and loaded, never trained;
/// - `@StateKey("running_mean")` renames a key where PyTorch's name differs from the Swift name;
///   `@Buffer("running_mean")` does both;
/// - `@Transient` hides a stored tensor or module (a cache, a constant grid, a back reference);
/// - everything else (numbers, strings, closures, noise sources) is ignored.
///
/// A subclass can instead list its state explicitly by overriding `stateEntries()` (as `Sequential`
/// does to name its layers "0", "1", ...). Reflection was chosen over registration calls because the
/// declaration is then the single source of truth: a key cannot be forgotten or registered twice.
/// The flip side, a stray stored tensor silently becoming a parameter, is caught by pinning each
/// model's full key list in a test.
///
/// Properties behind a wrapper are assigned after `super.init()` (Swift's rule for wrapped
/// properties of classes); reading one before that traps with its key in the message.
///
/// **Order.** Keys come in PyTorch's order: a module's own parameters, then (in state dicts) its own
/// buffers, then each child's keys in turn. That equals the reference's order when properties are
/// declared in the order the PyTorch `__init__` assigns them.
open class Module {
    /// Training mode (true, the default) or evaluation mode; set with `train()` / `eval()`.
    /// Only layers that behave differently use it (BatchNorm).
    public private(set) var training = true

    public init() {}

    /// One piece of a module's own state.
    public enum StateEntry {
        case parameter(Tensor)
        case buffer(Tensor)
        case int64Buffer(Int64Tensor)
        case child(Module)
    }

    /// This module's own parameters, buffers and children (not recursive), keyed by name, in
    /// declaration order. The default reads stored properties by reflection (see the class
    /// documentation); override to list state explicitly.
    open func stateEntries() -> [(key: String, entry: StateEntry)] {
        var mirrors: [Mirror] = []
        var next: Mirror? = Mirror(reflecting: self)
        while let m = next { mirrors.append(m); next = m.superclassMirror }
        var out: [(key: String, entry: StateEntry)] = []
        for mirror in mirrors.reversed() {
            for child in mirror.children {
                guard let label = child.label, !label.hasPrefix("$__lazy_storage_$_") else { continue }
                if let wrapped = child.value as? ModuleStateProperty {
                    guard wrapped.stateRole != .hidden, let value = wrapped.stateValue else { continue }
                    // A wrapper's backing storage is labelled "_name".
                    let key = wrapped.stateKey ?? (label.hasPrefix("_") ? String(label.dropFirst()) : label)
                    Module.collect(value, key: key, buffer: wrapped.stateRole == .buffer, into: &out)
                } else {
                    Module.collect(child.value, key: label, buffer: false, into: &out)
                }
            }
        }
        return out
    }

    private static func collect(_ value: Any, key: String, buffer: Bool, into out: inout [(key: String, entry: StateEntry)]) {
        switch value {
        case let t as Tensor: out.append((key, buffer ? .buffer(t) : .parameter(t)))
        case let t as Int64Tensor: out.append((key, .int64Buffer(t)))
        case let m as Module: out.append((key, .child(m)))
        case let ts as [Tensor]:
            for (i, t) in ts.enumerated() { out.append(("\(key).\(i)", buffer ? .buffer(t) : .parameter(t))) }
        case let ms as [Module]:
            for (i, m) in ms.enumerated() { out.append(("\(key).\(i)", .child(m))) }
        default: break
        }
    }

    /// Visits this module and every descendant, pre-order, with its dotted path ("" for self).
    /// Traps on a cycle (a stored reference back to an ancestor must be `@Transient`).
    private func visit(prefix: String, path: inout Set<ObjectIdentifier>,
                       _ body: (String, Module, [(key: String, entry: StateEntry)]) -> Void) {
        let id = ObjectIdentifier(self)
        precondition(!path.contains(id), "module cycle at '\(prefix)': mark the back reference @Transient")
        path.insert(id)
        let entries = stateEntries()
        body(prefix, self, entries)
        for (key, entry) in entries {
            if case .child(let m) = entry { m.visit(prefix: prefix.isEmpty ? key : prefix + "." + key, path: &path, body) }
        }
        path.remove(id)
    }

    private func walk(_ body: (String, Module, [(key: String, entry: StateEntry)]) -> Void) {
        var path = Set<ObjectIdentifier>()
        visit(prefix: "", path: &path, body)
    }

    private static func join(_ prefix: String, _ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }

    /// Every module in the tree, pre-order, keyed by dotted path (self is "").
    public final func namedModules() -> [(String, Module)] {
        var out: [(String, Module)] = []
        walk { prefix, m, _ in out.append((prefix, m)) }
        return out
    }

    /// The direct children, keyed by name.
    public final func children() -> [(String, Module)] {
        stateEntries().compactMap { key, entry in
            if case .child(let m) = entry { return (key, m) }
            return nil
        }
    }

    /// Every parameter in the tree with its PyTorch-style key (`enc.0.weight`), in PyTorch's
    /// `named_parameters()` order. A tensor shared by two modules is listed once, under its first key.
    public final func namedParameters() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        var seen = Set<ObjectIdentifier>()
        walk { prefix, _, entries in
            for (key, entry) in entries {
                if case .parameter(let t) = entry, seen.insert(ObjectIdentifier(t)).inserted {
                    out.append((Module.join(prefix, key), t))
                }
            }
        }
        return out
    }

    /// The parameters of `namedParameters()`, without keys.
    public final func parameters() -> [Tensor] { namedParameters().map { $0.1 } }

    /// The number of trainable scalars.
    public final var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

    /// Every buffer in the tree (Float32 and int64), keyed and ordered like PyTorch's `named_buffers()`.
    public final func namedBuffers() -> [(String, StateValue)] {
        var out: [(String, StateValue)] = []
        walk { prefix, _, entries in
            for (key, entry) in entries {
                switch entry {
                case .buffer(let t): out.append((Module.join(prefix, key), .float(t)))
                case .int64Buffer(let t): out.append((Module.join(prefix, key), .int64(t)))
                default: break
                }
            }
        }
        return out
    }

    /// Parameters and buffers in PyTorch's `state_dict()` order: per module, its parameters, then its
    /// buffers, then its children. The values are the live tensors (not copies).
    public final func namedState() -> [(String, StateValue)] {
        var out: [(String, StateValue)] = []
        walk { prefix, _, entries in
            for (key, entry) in entries { if case .parameter(let t) = entry { out.append((Module.join(prefix, key), .float(t))) } }
            for (key, entry) in entries {
                switch entry {
                case .buffer(let t): out.append((Module.join(prefix, key), .float(t)))
                case .int64Buffer(let t): out.append((Module.join(prefix, key), .int64(t)))
                default: break
                }
            }
        }
        return out
    }

    /// `namedState()` as a dictionary: what a checkpoint saves. The values are the live tensors;
    /// clone them to keep a snapshot that later training does not change.
    public final func stateDict() -> [String: StateValue] {
        var out: [String: StateValue] = [:]
        for (k, v) in namedState() { out[k] = v }
        return out
    }

    /// Copies `state` into this module's parameters and buffers, in place (the tensors keep their
    /// identity, so optimizers holding them stay valid).
    ///
    /// Every key, dtype and shape is checked before anything is written, so a failed load leaves the
    /// module unchanged. Throws `SpaceError.parameter` naming the first offending key (and counting
    /// the others) for: a key the module has but `state` lacks (strict only), a key in `state` the
    /// module does not have (strict only), a dtype mismatch, or a shape mismatch (always, as PyTorch).
    public final func loadStateDict(_ state: [String: StateValue], strict: Bool = true) throws {
        let own = namedState()
        var problems: [(key: String, message: String)] = []
        var ownKeys = Set<String>()
        for (key, value) in own {
            ownKeys.insert(key)
            guard let source = state[key] else {
                if strict { problems.append((key, "missing from the loaded state; the model has \(value.dtype) \(shapeString(value.shape))")) }
                continue
            }
            if source.dtype != value.dtype {
                problems.append((key, "loaded \(source.dtype) \(shapeString(source.shape)), the model has \(value.dtype) \(shapeString(value.shape))"))
            } else if source.shape != value.shape {
                problems.append((key, "loaded shape \(shapeString(source.shape)), the model has shape \(shapeString(value.shape))"))
            }
        }
        if strict {
            for key in state.keys.sorted() where !ownKeys.contains(key) {
                let v = state[key]!
                problems.append((key, "unexpected: loaded \(v.dtype) \(shapeString(v.shape)), the model has no such parameter or buffer"))
            }
        }
        if let first = problems.first {
            var message = first.message
            if problems.count > 1 {
                let more = problems.dropFirst().prefix(10).map { "'\($0.key)': \($0.message)" }.joined(separator: "; ")
                message += " (and \(problems.count - 1) more: \(more)\(problems.count > 11 ? "; ..." : ""))"
            }
            throw SpaceError.parameter(key: first.key, message: message)
        }
        for (key, value) in own {
            guard let source = state[key] else { continue }
            switch (value, source) {
            case (.float(let dst), .float(let src)):
                if dst.storage !== src.storage { try dst.copy(from: src) }
            case (.int64(let dst), .int64(let src)):
                if dst !== src { dst.values = src.values }
            default: break
            }
        }
    }

    /// `loadStateDict` for a dictionary of Float32 tensors (every value `.float`).
    public final func loadStateDict(_ state: [String: Tensor], strict: Bool = true) throws {
        try loadStateDict(state.mapValues { StateValue.float($0) }, strict: strict)
    }

    /// Sets training mode (`true`) or evaluation mode (`false`) on this module and every descendant.
    public final func train(_ mode: Bool = true) {
        for (_, m) in namedModules() { m.training = mode }
    }

    /// Evaluation mode for the whole tree: `train(false)`.
    public final func eval() { train(false) }

    /// Forgets the accumulated gradient of every parameter.
    public final func zeroGrad() {
        for p in parameters() { p.zeroGrad() }
    }
}

/// What a state property wrapper tells `Module`'s reflection. Implemented by `StateKey`, `Buffer`
/// and `Transient`; not meant to be adopted elsewhere.
public protocol ModuleStateProperty {
    /// The key to use instead of the property name, if any.
    var stateKey: String? { get }
    var stateRole: ModuleStateRole { get }
    /// The wrapped value, nil while unassigned.
    var stateValue: Any? { get }
}

/// How a wrapped property counts in a module's state.
public enum ModuleStateRole {
    /// A tensor is a parameter, a module a child (the same as an unwrapped property).
    case standard
    /// A tensor (or `Int64Tensor`) saved and loaded but not trained.
    case buffer
    /// Not state at all.
    case hidden
}

/// Renames a parameter or child's key where PyTorch's name differs from the Swift property name:
/// `@StateKey("weight_ih") var weightIH: Tensor`, `@StateKey("fg_module") var foreground: SpaceFg`.
/// Assign it after `super.init()`.
@propertyWrapper
public struct StateKey<Value>: ModuleStateProperty {
    private var value: Value?
    public let key: String

    public init(_ key: String) { self.key = key }
    public init(wrappedValue: Value, _ key: String) { self.value = wrappedValue; self.key = key }

    public var wrappedValue: Value {
        get {
            guard let value else { preconditionFailure("module state '\(key)' read before it was assigned") }
            return value
        }
        set { value = newValue }
    }

    public var stateKey: String? { key }
    public var stateRole: ModuleStateRole { .standard }
    public var stateValue: Any? { value }
}

/// Marks a stored `Tensor` or `Int64Tensor` as a buffer (saved, loaded, not trained), optionally with
/// its PyTorch key: `@Buffer("running_mean") var runningMean: Tensor`. Assign it after `super.init()`
/// unless it has an initial value.
@propertyWrapper
public struct Buffer<Value>: ModuleStateProperty {
    private var value: Value?
    public let key: String?

    public init(_ key: String? = nil) { self.key = key }
    public init(wrappedValue: Value, _ key: String? = nil) { self.value = wrappedValue; self.key = key }

    public var wrappedValue: Value {
        get {
            guard let value else { preconditionFailure("buffer '\(key ?? "?")' read before it was assigned") }
            return value
        }
        set { value = newValue }
    }

    public var stateKey: String? { key }
    public var stateRole: ModuleStateRole { .buffer }
    public var stateValue: Any? { value }
}

/// Hides a stored tensor or module from the module's state (caches, constants, back references).
@propertyWrapper
public struct Transient<Value>: ModuleStateProperty {
    public var wrappedValue: Value

    public init(wrappedValue: Value) { self.wrappedValue = wrappedValue }

    public var stateKey: String? { nil }
    public var stateRole: ModuleStateRole { .hidden }
    public var stateValue: Any? { nil }
}
