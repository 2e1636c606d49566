// Activation and reshaping layers without parameters. In a `Sequential` they still take an index,
// as in PyTorch, so the keys of the layers after them line up with the reference's.

/// CELU: max(0, x) + min(0, alpha (exp(x / alpha) - 1)). Any shape.
public final class CELU: Module, UnaryLayer {
    public let alpha: Float
    public init(alpha: Float = 1) { self.alpha = alpha; super.init() }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.celu(alpha: alpha) }
}

/// ELU: x for x > 0, alpha (exp(x) - 1) otherwise. Any shape.
public final class ELU: Module, UnaryLayer {
    public let alpha: Float
    public init(alpha: Float = 1) { self.alpha = alpha; super.init() }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.elu(alpha: alpha) }
}

/// max(0, x). Any shape.
public final class ReLU: Module, UnaryLayer {
    public override init() { super.init() }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.relu() }
}

/// 1 / (1 + exp(-x)). Any shape.
public final class Sigmoid: Module, UnaryLayer {
    public override init() { super.init() }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.sigmoid() }
}

/// tanh(x). Any shape.
public final class Tanh: Module, UnaryLayer {
    public override init() { super.init() }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.tanh() }
}

/// Softplus with beta 1: log(1 + exp(x)), or x where x > threshold. Any shape.
public final class Softplus: Module, UnaryLayer {
    public let threshold: Float
    public init(threshold: Float = 20) { self.threshold = threshold; super.init() }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.softplus(threshold: threshold) }
}

/// Depth to space: (N, C r^2, H, W) -> (N, C, H r, W r) (torch.nn.PixelShuffle).
public final class PixelShuffle: Module, UnaryLayer {
    public let upscaleFactor: Int
    public init(_ upscaleFactor: Int) { self.upscaleFactor = upscaleFactor; super.init() }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.pixelShuffle(upscaleFactor) }
}

/// Flattens dims `startDim...endDim` into one (torch.nn.Flatten; by default (N, *) -> (N, prod(*))).
public final class Flatten: Module, UnaryLayer {
    public let startDim: Int
    public let endDim: Int
    public init(startDim: Int = 1, endDim: Int = -1) { self.startDim = startDim; self.endDim = endDim; super.init() }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.flatten(start: startDim, end: endDim) }
}

/// Returns its input. Any shape.
public final class Identity: Module, UnaryLayer {
    public override init() { super.init() }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x }
}
