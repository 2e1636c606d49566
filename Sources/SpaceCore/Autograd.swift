import CKernels

/// One recorded op: its inputs and how to turn the output's gradient into the inputs' gradients.
/// `backward` returns one gradient per input (nil where an input takes none), each of that input's shape.
final class GradNode {
    let name: String
    let inputs: [Tensor]
    let backward: (Tensor) throws -> [Tensor?]
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
            out.creator = GradNode(name: name, inputs: inputs, backward: backward)
        }
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
        var order: [Tensor] = []
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
        try Tensor.noGrad {
            var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): gradient]
            for t in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(t)) else { continue }
                if let node = t.creator {
                    let inputGrads = try node.backward(g)
                    for (input, ig) in zip(node.inputs, inputGrads) {
                        guard input.requiresGrad, let ig else { continue }
                        let key = ObjectIdentifier(input)
                        if let existing = grads[key] { grads[key] = try existing + ig } else { grads[key] = ig }
                    }
                } else {
                    t.accumulateGrad(g)
                }
            }
        }
        releaseGraph(order)
    }

    private func releaseGraph(_ order: [Tensor]) {
        for t in order { t.creator = nil }
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
