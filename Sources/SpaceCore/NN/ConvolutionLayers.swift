// The 2-D convolution layer (the op is `conv2d` in Ops/Convolution.swift).

/// A 2-D convolution over NCHW images (torch.nn.Conv2d with square kernels, dilation 1, groups 1).
///
/// Input (N, inputChannels, H, W), output (N, outputChannels, H', W') with
/// H' = (H + 2 padding - kernelSize) / stride + 1 (likewise W'). Parameters: `weight`
/// (outputChannels, inputChannels, kernelSize, kernelSize), `bias` (outputChannels) unless
/// `bias: false`. Initialised as PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
/// fan_in = inputChannels * kernelSize^2, weight drawn first.
public final class Conv2d: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int
    public let padding: Int

    public init(inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, noise: SeededNoise = ParameterInit.defaultNoise) {
        precondition(inputChannels > 0 && outputChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0,
                     "Conv2d(inputChannels: \(inputChannels), outputChannels: \(outputChannels), kernelSize: \(kernelSize), stride: \(stride), padding: \(padding))")
        let bound = ParameterInit.defaultBound(fanIn: inputChannels * kernelSize * kernelSize)
        weight = ParameterInit.uniform([outputChannels, inputChannels, kernelSize, kernelSize], bound: bound, noise: noise)
        self.bias = bias ? ParameterInit.uniform([outputChannels], bound: bound, noise: noise) : nil
        self.stride = stride
        self.padding = padding
        super.init()
    }

    public var inputChannels: Int { weight.shape[1] }
    public var outputChannels: Int { weight.shape[0] }
    public var kernelSize: Int { weight.shape[2] }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try Profiler.scope(self) { try conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding) }
    }
}
