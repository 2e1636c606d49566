import CKernels
import SpaceCore

/// An optimizer updates named parameters from their gradients, keeping per-parameter state keyed like
/// the parameters (so it saves and loads with them). Parameters without a gradient are skipped, as in
/// PyTorch.
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    /// One update of every parameter that has a gradient.
    func step(_ parameters: [(String, Tensor)]) throws
    /// The optimizer's state as named tensors ("<param>.<slot>", e.g. "fg_module.x.weight.square_avg").
    func stateDict() -> [String: Tensor]
    /// Restores `stateDict()`'s output; throws naming the key on a shape mismatch.
    func loadStateDict(_ state: [String: Tensor]) throws
}

/// Keeps per-parameter slots (named tensors) and the per-parameter step count.
open class OptimizerBase {
    public var learningRate: Float
    var slots: [String: [String: Tensor]] = [:]
    var steps: [String: Int] = [:]
    let slotNames: [String]

    init(learningRate: Float, slotNames: [String]) {
        self.learningRate = learningRate
        self.slotNames = slotNames
    }

    func slot(_ name: String, for key: String, like p: Tensor) -> Tensor {
        if let t = slots[key]?[name] { return t }
        let t = Tensor.zeros(p.shape)
        slots[key, default: [:]][name] = t
        return t
    }

    public func stateDict() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (key, s) in slots { for (name, t) in s { out[key + "." + name] = t } }
        for (key, n) in steps { out[key + ".step"] = Tensor(scalar: Float(n)) }
        return out
    }

    public func loadStateDict(_ state: [String: Tensor]) throws {
        var newSlots: [String: [String: Tensor]] = [:], newSteps: [String: Int] = [:]
        for (k, t) in state {
            guard let dot = k.lastIndex(of: ".") else { throw SpaceError.parameter(key: k, message: "not an optimizer state key") }
            let key = String(k[..<dot]), name = String(k[k.index(after: dot)...])
            if name == "step" { newSteps[key] = Int(try t.item()) }
            else if slotNames.contains(name) { newSlots[key, default: [:]][name] = t.clone() }
            else { throw SpaceError.parameter(key: k, message: "unknown optimizer slot '\(name)' (expected \(slotNames + ["step"]))") }
        }
        slots = newSlots; steps = newSteps
    }
}

/// torch.optim.RMSprop with its defaults (alpha 0.99, eps 1e-8, no momentum, not centered).
public final class RMSprop: OptimizerBase, Optimizer {
    public var alpha: Float
    public var eps: Float

    public init(learningRate: Float = 0.01, alpha: Float = 0.99, eps: Float = 1e-8) {
        self.alpha = alpha
        self.eps = eps
        super.init(learningRate: learningRate, slotNames: ["square_avg"])
    }

    public func step(_ parameters: [(String, Tensor)]) throws {
        for (key, p) in parameters {
            guard let g = p.grad else { continue }
            let v = slot("square_avg", for: key, like: p)
            guard v.shape == p.shape else { throw SpaceError.parameter(key: key, message: "optimizer state \(shapeString(v.shape)) vs parameter \(shapeString(p.shape))") }
            steps[key, default: 0] += 1
            sk_rmsprop_step(p.pointer, v.pointer, g.pointer, Int64(p.count), learningRate, alpha, eps)
        }
    }
}

/// torch.optim.Adam with its defaults (betas 0.9, 0.999; eps 1e-8; no weight decay, no amsgrad).
public final class Adam: OptimizerBase, Optimizer {
    public var beta1: Float
    public var beta2: Float
    public var eps: Float

    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        super.init(learningRate: learningRate, slotNames: ["exp_avg", "exp_avg_sq"])
    }

    public func step(_ parameters: [(String, Tensor)]) throws {
        for (key, p) in parameters {
            guard let g = p.grad else { continue }
            let m = slot("exp_avg", for: key, like: p), v = slot("exp_avg_sq", for: key, like: p)
            guard m.shape == p.shape, v.shape == p.shape else {
                throw SpaceError.parameter(key: key, message: "optimizer state \(shapeString(m.shape)) vs parameter \(shapeString(p.shape))")
            }
            let t = steps[key, default: 0] + 1
            steps[key] = t
            sk_adam_step(p.pointer, m.pointer, v.pointer, g.pointer, Int64(p.count), learningRate, beta1, beta2, eps, Int64(t))
        }
    }
}

/// Makes an optimizer from the reference's config names ("Adam", "RMSprop").
public func makeOptimizer(name: String, learningRate: Float) throws -> Optimizer {
    switch name {
    case "Adam": return Adam(learningRate: learningRate)
    case "RMSprop": return RMSprop(learningRate: learningRate)
    default: throw SpaceError.argument(op: "optimizer", message: "unknown optimizer '\(name)' (known: Adam, RMSprop)")
    }
}

/// Scales all gradients so that their global 2-norm is at most `maxNorm`, as torch's clip_grad_norm_:
/// coefficient min(1, maxNorm / (norm + 1e-6)), applied to every gradient. Returns the norm before.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
    let grads = parameters.compactMap { $0.grad }
    var total = 0.0
    for g in grads { total += sk_sum_squares(g.pointer, Int64(g.count)) }
    let norm = Float(total.squareRoot())
    let coef = min(Float(1), maxNorm / (norm + 1e-6))
    for g in grads { sk_scale_inplace(g.pointer, Int64(g.count), coef) }
    return norm
}
