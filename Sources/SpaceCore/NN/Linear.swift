// The fully connected layer.

/// y = x W^T + b (torch.nn.Linear).
///
/// Input (..., inputCount), output (..., outputCount). Parameters: `weight` (outputCount, inputCount),
/// `bias` (outputCount) unless `bias: false`. Initialised as PyTorch: both U(-1/sqrt(inputCount),
/// 1/sqrt(inputCount)), weight drawn first.
public final class Linear: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?

    public init(inputCount: Int, outputCount: Int, bias: Bool = true, noise: SeededNoise = ParameterInit.defaultNoise) {
        precondition(inputCount >= 0 && outputCount >= 0, "Linear(inputCount: \(inputCount), outputCount: \(outputCount))")
        let bound = ParameterInit.defaultBound(fanIn: inputCount)
        weight = ParameterInit.uniform([outputCount, inputCount], bound: bound, noise: noise)
        self.bias = bias ? ParameterInit.uniform([outputCount], bound: bound, noise: noise) : nil
        super.init()
    }

    public var inputCount: Int { weight.shape[1] }
    public var outputCount: Int { weight.shape[0] }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try linear(x, weight: weight, bias: bias)
    }
}
