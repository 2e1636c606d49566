/// The relaxed Bernoulli of the SPACE reference in logit space (its `NumericalRelaxedBernoulli`, a
/// torch `RelaxedBernoulli` whose samples and densities are those of `LogitRelaxedBernoulli`).
///
/// A sample is a *logit*: the caller applies `sigmoid` to get z_pres in (0, 1).
///
/// **Edge gradients.** `rsample` clamps sigmoid(logits) into [eps, 1 - eps] (eps = float32's machine
/// epsilon, 1.1920929e-07, torch's `clamp_probs`): where |logits| exceeds ~15.9 the probability sits
/// on the clamp and the sample's gradient in the logits is exactly 0 there. Inside the interval
/// d sample / d logits = 1 / temperature (log p - log(1 - p) = logits). The uniform draw is clamped
/// the same way so log(u) and log1p(-u) stay finite. `logProb`'s log1p(exp(diff)) overflows to inf
/// for diff > ~88 (then the result is -inf and its gradient NaN, as in PyTorch).
public struct NumericalRelaxedBernoulli {
    public let logits: Tensor
    public let temperature: Float

    /// torch.finfo(torch.float32).eps.
    public static let eps: Float = Float.ulpOfOne

    public init(logits: Tensor, temperature: Float) {
        self.logits = logits
        self.temperature = temperature
    }

    /// sigmoid(logits), unclamped.
    public var probs: Tensor { logits.sigmoid() }

    /// LogitRelaxedBernoulli.rsample: with p = clamp(sigmoid(logits), eps, 1 - eps) and
    /// u = clamp(`noise.uniform(logits.shape, name:)`, eps, 1 - eps),
    /// (log u - log1p(-u) + log p - log1p(-p)) / temperature. Differentiable in the logits.
    public func rsample(noise: NoiseSource, name: String) throws -> Tensor {
        let eps = NumericalRelaxedBernoulli.eps
        let p = probs.clamp(min: eps, max: 1 - eps)
        let u = try noise.uniform(logits.shape, name: name).clamp(min: eps, max: 1 - eps)
        let logistic = try u.log() - (-u).log1p() + p.log() - (-p).log1p()
        return try logistic / Tensor(scalar: temperature)
    }

    /// The density of a logit sample: log(tau) + diff - 2 log1p(exp(diff)), diff = logits - value * tau.
    public func logProb(_ value: Tensor) throws -> Tensor {
        let tau = Tensor(scalar: temperature)
        let diff = try logits - value * tau
        return try tau.log() + diff - diff.exp().log1p() * 2
    }
}

/// KL(Bernoulli(sigmoid(logits)) || Bernoulli(priorProb)), elementwise, as the reference's
/// `kl_divergence_bern_bern`: with p = sigmoid(logits),
/// p (log(p + eps) - log(prior + eps)) + (1 - p) (log(1 - p + eps) - log(1 - prior + eps)).
/// `priorProb` broadcasts against the logits (the reference passes a 0-dim tensor). The eps keeps the
/// logs finite where p or the prior reach 0 or 1 (p saturates to exactly 1 for logits > ~17); the
/// gradient stays finite there.
public func klDivergenceBernoulli(logits: Tensor, priorProb: Tensor, eps: Float = 1e-15) throws -> Tensor {
    let p = logits.sigmoid()
    let q = 1 - p
    let pos = try p * ((p + eps).log() - (priorProb + eps).log())
    let neg = try q * ((q + eps).log() - (1 - priorProb + eps).log())
    return try pos + neg
}

/// `klDivergenceBernoulli` with a scalar prior probability.
public func klDivergenceBernoulli(logits: Tensor, priorProb: Float, eps: Float = 1e-15) throws -> Tensor {
    try klDivergenceBernoulli(logits: logits, priorProb: Tensor(scalar: priorProb), eps: eps)
}
