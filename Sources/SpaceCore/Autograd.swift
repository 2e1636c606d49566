import CKernels
import Dispatch

/// One recorded op: its inputs and how to turn the output's gradient into the inputs' gradients.
/// `backward` returns one gradient per input (nil where an input takes none), each of that input's shape.
final class GradNode {
    let name: String
    let inputs: [Tensor]
    let backward: (Tensor) throws -> [Tensor?]
    /// Labels for the profiler, when one was recording as the node was made.
    var profile: NodeProfile?
    init(name: String, inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
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
        if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
            out.requiresGrad = true
            let node = GradNode(name: name, inputs: inputs, backward: backward)
            if let p = Profiler.active { node.profile = p.captureForNode() }
            out.creator = node
        }
        Profiler.opFinished(name)
        return out
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
        // Topological order of the recorded nodes reachable from self (iterative DFS).
        var order: [Tensor?] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Int)] = [(self, 0)]
        visited.insert(ObjectIdentifier(self))
        while let (t, i) = stack.popLast() {
            if let node = t.creator, i < node.inputs.count {
                stack.append((t, i + 1))
                let child = node.inputs[i]
                if child.requiresGrad && !visited.contains(ObjectIdentifier(child)) {
                    visited.insert(ObjectIdentifier(child))
                    stack.append((child, 0))
                }
            } else {
                order.append(t)
            }
        }
        let profiler = Profiler.active
        profiler?.inBackward = true
        defer { profiler?.inBackward = false; profiler?.mark() }
        try Tensor.noGrad {
            var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): gradient]
            for index in order.indices.reversed() {
                // Each node is released as soon as its gradient function has run, and the walk lets go
                // of the tensor: what only backward kept alive is freed as backward goes.
                guard let t = order[index] else { continue }
                order[index] = nil
                defer { t.creator = nil }
                guard let g = grads.removeValue(forKey: ObjectIdentifier(t)) else { continue }
                if let node = t.creator {
                    let t0 = Profiler.active == nil ? 0 : DispatchTime.now().uptimeNanoseconds
                    profiler?.backwardLayer = node.profile?.layer ?? ""
                    let inputGrads = try node.backward(g)
                    if let p = Profiler.active {
                        let t1 = DispatchTime.now().uptimeNanoseconds
                        let own = Double(t1 - t0) * 1e-9 - p.takeSectionSeconds()
                        p.backwardFinished(node.name, layer: node.profile?.layer ?? "", detail: node.profile?.detail ?? "",
                                           seconds: own, flops: node.profile?.flops ?? 0)
                    }
                    for (input, ig) in zip(node.inputs, inputGrads) {
                        guard input.requiresGrad, let ig else { continue }
                        let key = ObjectIdentifier(input)
                        if let existing = grads[key] {
                            let t2 = Profiler.active == nil ? 0 : DispatchTime.now().uptimeNanoseconds
                            grads[key] = try existing + ig
                            if let p = Profiler.active {
                                p.backwardFinished("accumulate", layer: node.profile?.layer ?? "", detail: "",
                                                   seconds: Double(DispatchTime.now().uptimeNanoseconds - t2) * 1e-9, flops: 0)
                            }
                        } else { grads[key] = ig }
                    }
                } else {
                    t.accumulateGrad(g)
                }
            }
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
