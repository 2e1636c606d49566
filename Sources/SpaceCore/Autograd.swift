import CKernels
import Dispatch

/// Where one input of a recorded op leads in the graph.
enum GradEdge {
    /// The input needs no gradient.
    case none
    /// The input was made by another recorded op: its gradient flows into that node.
    case node(GradNode)
    /// The input is a leaf that requires grad: its gradient accumulates into the tensor's `grad`.
    case leaf(Tensor)
}

/// One recorded op: where its inputs lead and how to turn the output's gradient into the inputs'
/// gradients. `backward` returns one gradient per input (nil where an input takes none), each of that
/// input's shape.
///
/// A node holds the nodes that made its inputs, not the input tensors: an intermediate tensor stays
/// alive only while user code or a gradient function that needs it (the closure captures it) holds
/// it, as in PyTorch. The closure and the edges are dropped as soon as the node's backward has run.
final class GradNode {
    let name: String
    private(set) var edges: [GradEdge]
    private(set) var backward: ((Tensor) throws -> [Tensor?])?
    /// Labels for the profiler, when one was recording as the node was made.
    var profile: NodeProfile?
    init(name: String, inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.name = name
        self.edges = inputs.map { t in
            guard t.requiresGrad else { return .none }
            if let c = t.creator { return .node(c) }
            return .leaf(t)
        }
        self.backward = backward
    }

    /// Lets go of the gradient function (and what it captured) and of the inputs' nodes.
    func release() {
        backward = nil
        edges = []
    }
}

/// Whether ops record the graph. Off inside `Tensor.noGrad { }` (inference records nothing).
public enum GradMode {
    nonisolated(unsafe) public static var isEnabled = true
}

extension Tensor {
    /// Runs `body` without recording any op for autograd.
    public static func noGrad<T>(_ body: () throws -> T) rethrows -> T {
        let previous = GradMode.isEnabled
        GradMode.isEnabled = false
        defer { GradMode.isEnabled = previous }
        return try body()
    }

    /// Builds an op's result and, when gradients are recorded and any input needs one, its graph node.
    @inline(__always)
    static func result(_ shape: [Int], _ storage: Storage, name: String, inputs: [Tensor],
                       backward: @escaping (Tensor) throws -> [Tensor?]) -> Tensor {
        let out = Tensor(shape: shape, storage: storage)
        if recordsGradient(inputs) {
            out.requiresGrad = true
            let node = GradNode(name: name, inputs: inputs, backward: backward)
            if let p = Profiler.active { node.profile = p.captureForNode() }
            out.creator = node
        }
        Profiler.opFinished(name)
        return out
    }

    /// Whether an op on `inputs` would be recorded for backward now (gradients on and some input needs one).
    static func recordsGradient(_ inputs: [Tensor]) -> Bool {
        GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad })
    }

    /// Whether this tensor was produced by a recorded op.
    public var hasGradientGraph: Bool { creator != nil }

    /// Reverse-mode differentiation from this scalar: adds d(self)/d(leaf) into every leaf's `grad`.
    /// Gradients accumulate across calls until `zeroGrad()`. The graph below self is released after.
    public func backward() throws {
        guard count == 1 else {
            throw SpaceError.shape(op: "backward", message: "backward needs a scalar, got shape \(shapeString(shape))")
        }
        try backward(gradient: Tensor.ones(shape))
    }

    /// Reverse-mode differentiation with an explicit output gradient of this tensor's shape.
    public func backward(gradient: Tensor) throws {
        guard gradient.shape == shape else {
            throw SpaceError.shape(op: "backward", message: "gradient \(shapeString(gradient.shape)) for tensor \(shapeString(shape))")
        }
        guard requiresGrad else {
            throw SpaceError.message("backward: tensor does not require grad (no parameter or input with requiresGrad reached it)")
        }
        guard let root = creator else {
            // A leaf: its own gradient.
            accumulateGrad(gradient)
            return
        }
        // Topological order of the recorded nodes reachable from the root (iterative DFS, post-order).
        var order: [GradNode?] = []
        var visited = Set<ObjectIdentifier>([ObjectIdentifier(root)])
        var stack: [(GradNode, Int)] = [(root, 0)]
        while let (node, i) = stack.popLast() {
            if i < node.edges.count {
                stack.append((node, i + 1))
                if case .node(let child) = node.edges[i], visited.insert(ObjectIdentifier(child)).inserted {
                    stack.append((child, 0))
                }
            } else {
                order.append(node)
            }
        }
        let profiler = Profiler.active
        profiler?.inBackward = true
        defer { profiler?.inBackward = false; profiler?.mark() }
        // The graph is released whatever happens: a failed backward leaves nothing half-connected.
        defer { for node in order { node?.release() }; creator = nil }
        try Tensor.noGrad {
            var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): gradient]
            var leafGrads: [(Tensor, Tensor)] = []
            var leafIndex: [ObjectIdentifier: Int] = [:]
            func add(_ existing: Tensor, _ ig: Tensor, _ node: GradNode) throws -> Tensor {
                let t0 = Profiler.active == nil ? 0 : DispatchTime.now().uptimeNanoseconds
                let sum = try existing + ig
                if let p = Profiler.active {
                    p.backwardFinished("accumulate", layer: node.profile?.layer ?? "", detail: "",
                                       seconds: Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9, flops: 0)
                }
                return sum
            }
            for index in order.indices.reversed() {
                // Each node is released as soon as its gradient function has run: what only backward
                // kept alive is freed as backward goes.
                guard let node = order[index] else { continue }
                order[index] = nil
                defer { node.release() }
                guard let g = grads.removeValue(forKey: ObjectIdentifier(node)) else { continue }
                guard let fn = node.backward else {
                    throw SpaceError.message("backward: the graph through '\(node.name)' was already released by an earlier backward (run the forward pass again)")
                }
                let t0 = Profiler.active == nil ? 0 : DispatchTime.now().uptimeNanoseconds
                profiler?.backwardLayer = node.profile?.layer ?? ""
                let inputGrads = try fn(g)
                if let p = Profiler.active {
                    let t1 = DispatchTime.now().uptimeNanoseconds
                    let own = Double(t1 - t0) * 1e-9 - p.takeSectionSeconds()
                    p.backwardFinished(node.name, layer: node.profile?.layer ?? "", detail: node.profile?.detail ?? "",
                                       seconds: own, flops: node.profile?.flops ?? 0)
                }
                for (edge, ig) in zip(node.edges, inputGrads) {
                    guard let ig else { continue }
                    switch edge {
                    case .none: continue
                    case .node(let child):
                        let key = ObjectIdentifier(child)
                        if let existing = grads[key] { grads[key] = try add(existing, ig, node) } else { grads[key] = ig }
                    case .leaf(let t):
                        let key = ObjectIdentifier(t)
                        if let at = leafIndex[key] { leafGrads[at].1 = try add(leafGrads[at].1, ig, node) }
                        else { leafIndex[key] = leafGrads.count; leafGrads.append((t, ig)) }
                    }
                }
            }
            for (t, g) in leafGrads { t.accumulateGrad(g) }
        }
    }

    func accumulateGrad(_ g: Tensor) {
        if let existing = grad {
            sk_accumulate(existing.pointer, g.pointer, Int64(count))
        } else {
            grad = g.clone()
        }
    }

    /// Forgets the accumulated gradient.
    public func zeroGrad() { grad = nil }
}
