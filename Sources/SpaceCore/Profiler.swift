import Foundation

/// Where the time of a forward and backward pass goes: per op kind and per layer, forward and backward
/// apart, with each convolution's shape and arithmetic rate, and the bytes allocated.
///
/// Off by default (one nil check per op). While a profiler is `active`:
/// - every op is charged the wall time since the previous op finished (so glue code between ops is
///   charged to the op that follows it and nothing goes uncounted);
/// - ops record under the innermost layer being run (see `scope(_:_:)`), by path from `attach(_:)`;
/// - backward charges each recorded node's gradient function to the same op and layer;
/// - ops that know their arithmetic (convolutions, matmuls) report FLOPs and a shape description.
public final class Profiler: @unchecked Sendable {
    public enum Phase: String, Codable, Sendable { case forward, backward }

    /// One line of the profile.
    public struct Entry: Codable, Sendable {
        public var op: String
        public var layer: String
        public var phase: Phase
        /// The op's shape, e.g. "3072x128x4x4 -> 128 k3 s1 p1" for a convolution.
        public var detail: String
        public var calls: Int
        public var seconds: Double
        public var flops: Double
        public var gflopsPerSecond: Double { seconds > 0 ? flops / seconds / 1e9 : 0 }
    }

    /// The profiler recording now, if any. Set with `start()`, cleared with `stop()`.
    nonisolated(unsafe) public private(set) static var active: Profiler?

    private struct Key: Hashable { let op: String, layer: String, phase: Phase, detail: String }
    private var entries: [Key: Entry] = [:]
    private var order: [Key] = []
    private var layerNames: [ObjectIdentifier: String] = [:]
    private var scopes: [String] = []
    private var lastMark: UInt64 = 0
    /// Set while a backward pass runs: ops made inside gradient functions are part of that node's time.
    var inBackward = false
    /// The layer of the node whose gradient function is running (for sections inside it).
    var backwardLayer = ""
    private var sectionSeconds = 0.0
    /// Sections being run: ops finishing inside one are part of it, not charged on their own.
    var sectionDepth = 0
    private var pendingDetail: (String, Double, Double)?
    /// Bytes of tensor storage allocated while recording.
    public private(set) var bytesAllocated: Int = 0
    /// Storage allocations while recording.
    public private(set) var allocations: Int = 0

    public init() {}

    /// Names layers by their path in `root` (`fg_module.glimpse_dec.dec.3`), prefixed with `prefix`.
    public func attach(_ root: Module, prefix: String = "") {
        for (path, m) in root.namedModules() {
            let name = prefix.isEmpty ? path : (path.isEmpty ? prefix : prefix + "." + path)
            layerNames[ObjectIdentifier(m)] = name.isEmpty ? "(model)" : name
        }
    }

    public func start() {
        Profiler.active = self
        lastMark = DispatchTime.now().uptimeNanoseconds
    }

    public func stop() { if Profiler.active === self { Profiler.active = nil } }

    /// Forgets what was recorded (keeps the layer names).
    public func reset() {
        entries = [:]; order = []; bytesAllocated = 0; allocations = 0
        lastMark = DispatchTime.now().uptimeNanoseconds
    }

    /// The entries in first-seen order.
    public var report: [Entry] { order.compactMap { entries[$0] } }

    /// The current layer path ("" outside any layer).
    public var currentLayer: String { scopes.last ?? "" }

    /// Runs `body` with `module` as the current layer (when profiling; otherwise just runs it).
    @inline(__always)
    public static func scope<T>(_ module: Module, _ body: () throws -> T) rethrows -> T {
        guard let p = active else { return try body() }
        let name = p.layerNames[ObjectIdentifier(module)] ?? String(describing: type(of: module))
        if p.scopes.last == name { return try body() }
        p.scopes.append(name)
        defer { p.scopes.removeLast() }
        return try body()
    }

    /// Describes the op about to finish: its shape, its forward FLOPs and those of its backward (by
    /// default twice the forward: the input and the weight gradients). Picked up by the next op result.
    @inline(__always)
    public static func describe(_ detail: @autoclosure () -> String, flops: Double, backwardFlops: Double? = nil) {
        guard let p = active else { return }
        p.pendingDetail = (detail(), flops, backwardFlops ?? 2 * flops)
    }

    /// Called by every op as its result is made: charges the time since the last mark.
    @inline(__always)
    static func opFinished(_ name: String) {
        guard let p = active else { return }
        if p.inBackward || p.sectionDepth > 0 { p.pendingDetail = nil; return }
        let now = DispatchTime.now().uptimeNanoseconds
        let (detail, flops, _) = p.pendingDetail ?? ("", 0, 0)
        p.pendingDetail = nil
        p.add(op: name, layer: p.currentLayer, phase: .forward, detail: detail, seconds: Double(now &- p.lastMark) * 1e-9, flops: flops)
        p.lastMark = now
    }

    /// Charges a backward computation of `seconds` to an op recorded in forward.
    func backwardFinished(_ name: String, layer: String, detail: String, seconds: Double, flops: Double) {
        add(op: name, layer: layer, phase: .backward, detail: detail, seconds: seconds, flops: flops)
    }

    /// Times `body` as its own entry `op` (with a shape and FLOPs): the parts of a fused op. In forward
    /// the enclosing op is charged only what is left; in backward the node's own time excludes it.
    @inline(__always)
    public static func section<T>(_ op: String, _ detail: @autoclosure () -> String = "", flops: Double = 0,
                                  _ body: () throws -> T) rethrows -> T {
        guard let p = active else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        p.sectionDepth += 1
        let result: T
        do { result = try body() } catch { p.sectionDepth -= 1; throw error }
        p.sectionDepth -= 1
        let t1 = DispatchTime.now().uptimeNanoseconds
        if p.sectionDepth > 0 { return result }  // inside another section: charged as part of it
        let seconds = Double(t1 - t0) * 1e-9
        if p.inBackward {
            p.add(op: op, layer: p.backwardLayer, phase: .backward, detail: detail(), seconds: seconds, flops: flops)
            p.sectionSeconds += seconds
        } else {
            // What ran before the section belongs to the enclosing op: keep it for the op's own charge.
            p.add(op: op, layer: p.currentLayer, phase: .forward, detail: detail(), seconds: seconds, flops: flops)
            p.lastMark &+= t1 - t0
        }
        return result
    }

    /// Seconds of sections recorded in backward since the last call (the backward loop subtracts them
    /// from the node that ran them).
    func takeSectionSeconds() -> Double { defer { sectionSeconds = 0 }; return sectionSeconds }

    /// Restarts the forward clock (after backward, or after work that should not be charged).
    public func mark() { lastMark = DispatchTime.now().uptimeNanoseconds }

    @inline(__always)
    static func allocated(bytes: Int) {
        guard let p = active else { return }
        p.bytesAllocated += bytes
        p.allocations += 1
    }

    /// What the backward pass needs to charge a node later: its layer, detail and backward FLOPs.
    func captureForNode() -> NodeProfile {
        let d = pendingDetail ?? ("", 0, 0)
        return NodeProfile(layer: currentLayer, detail: d.0, flops: d.2)
    }

    private func add(op: String, layer: String, phase: Phase, detail: String, seconds: Double, flops: Double) {
        let key = Key(op: op, layer: layer, phase: phase, detail: detail)
        if var e = entries[key] {
            e.calls += 1; e.seconds += seconds; e.flops += flops
            entries[key] = e
        } else {
            entries[key] = Entry(op: op, layer: layer, phase: phase, detail: detail, calls: 1, seconds: seconds, flops: flops)
            order.append(key)
        }
    }
}

/// A recorded node's profile labels, kept for its backward.
struct NodeProfile {
    let layer: String
    let detail: String
    let flops: Double
}
