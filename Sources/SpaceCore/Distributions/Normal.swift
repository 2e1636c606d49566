import Foundation

/// A diagonal Normal distribution (torch.distributions.Normal) with reparameterised sampling.
///
/// `loc` and `scale` broadcast to the batch shape; every op follows PyTorch's formula and order so
/// results match it to float32 round-off.
public struct Normal {
    public let loc: Tensor
    public let scale: Tensor
    /// The broadcast shape of `loc` and `scale`: the shape of a sample.
    public let batchShape: [Int]

    public init(loc: Tensor, scale: Tensor) throws {
        self.loc = loc
        self.scale = scale
        batchShape = try broadcastShape(loc.shape, scale.shape, op: "Normal")
    }

    public var mean: Tensor { loc }
    public var stddev: Tensor { scale }

    /// A reparameterised sample loc + eps * scale, eps = `noise.normal(batchShape, name:)`.
    /// Differentiable in loc and scale.
    public func rsample(noise: NoiseSource, name: String) throws -> Tensor {
        let eps = try noise.normal(batchShape, name: name)
        return try loc + eps * scale
    }

    /// A sample cut from the graph.
    public func sample(noise: NoiseSource, name: String) throws -> Tensor {
        try Tensor.noGrad { try rsample(noise: noise, name: name) }.detached()
    }

    /// log N(value; loc, scale) = -((value - loc)^2) / (2 scale^2) - log(scale) - log(sqrt(2 pi)),
    /// elementwise over the broadcast of value and the batch shape. The gradient in scale is
    /// infinite at scale 0 (log near 0), as in PyTorch.
    public func logProb(_ value: Tensor) throws -> Tensor {
        let variance = scale.square()
        let logScale = scale.log()
        let d = try (value - loc).square()
        return try (-d) / (variance * 2) - logScale - Normal.logSqrtTwoPi
    }

    /// math.log(math.sqrt(2 * math.pi)) in double, rounded to float32 as PyTorch does when it
    /// subtracts the Python float from a float32 tensor.
    static let logSqrtTwoPi = Float(Foundation.log(Foundation.sqrt(2 * Double.pi)))
}

/// KL(p || q) of two Normals, elementwise (torch.distributions.kl._kl_normal_normal):
/// var_ratio = (p.scale / q.scale)^2; t1 = ((p.loc - q.loc) / q.scale)^2;
/// KL = 0.5 (var_ratio + t1 - 1 - log(var_ratio)).
public func klDivergence(_ p: Normal, _ q: Normal) throws -> Tensor {
    let varRatio = try (p.scale / q.scale).square()
    let t1 = try ((p.loc - q.loc) / q.scale).square()
    return try (varRatio + t1 - 1 - varRatio.log()) * 0.5
}
