// Normalisation layers (the ops are `groupNorm` and `batchNorm` in Ops/Normalization.swift).

/// Group normalisation (torch.nn.GroupNorm): the channels are split into `groups` groups and each
/// (sample, group) is normalised over its channels and spatial positions, then scaled and shifted per
/// channel.
///
/// Input (N, channels, *) with channels divisible by groups; output the same shape. Parameters
/// (when `affine`): `weight` (channels) initialised to ones, `bias` (channels) to zeros.
public final class GroupNorm: Module, UnaryLayer {
    public let groups: Int
    public let channels: Int
    public let eps: Float
    public let weight: Tensor?
    public let bias: Tensor?

    public init(groups: Int, channels: Int, eps: Float = 1e-5, affine: Bool = true) {
        precondition(groups > 0 && channels > 0 && channels % groups == 0, "GroupNorm(groups: \(groups), channels: \(channels)): channels must be a multiple of groups")
        self.groups = groups
        self.channels = channels
        self.eps = eps
        weight = affine ? Tensor.ones([channels], requiresGrad: true) : nil
        bias = affine ? Tensor.zeros([channels], requiresGrad: true) : nil
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }
}

/// Batch normalisation (torch.nn.BatchNorm2d; also accepts (N, C) and (N, C, L) like BatchNorm1d).
///
/// Input (N, channels, *), output the same shape. In training mode it normalises with the batch's
/// statistics over N and the spatial dims, updates the running statistics
/// (running = (1 - momentum) running + momentum batch, the variance unbiased) and increments
/// `num_batches_tracked`; in evaluation mode it normalises with the running statistics.
/// State keys: `weight` (ones), `bias` (zeros), buffers `running_mean` (zeros), `running_var` (ones),
/// `num_batches_tracked` (int64 scalar 0).
public final class BatchNorm2d: Module, UnaryLayer {
    public let channels: Int
    public let momentum: Float
    public let eps: Float
    public let weight: Tensor?
    public let bias: Tensor?
    @Buffer("running_mean") public var runningMean: Tensor
    @Buffer("running_var") public var runningVar: Tensor
    @Buffer("num_batches_tracked") public var numBatchesTracked: Int64Tensor

    public init(channels: Int, momentum: Float = 0.1, eps: Float = 1e-5, affine: Bool = true) {
        precondition(channels > 0, "BatchNorm2d(channels: \(channels))")
        self.channels = channels
        self.momentum = momentum
        self.eps = eps
        weight = affine ? Tensor.ones([channels], requiresGrad: true) : nil
        bias = affine ? Tensor.zeros([channels], requiresGrad: true) : nil
        super.init()
        runningMean = Tensor.zeros([channels])
        runningVar = Tensor.ones([channels])
        numBatchesTracked = Int64Tensor(scalar: 0)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let y = try batchNorm(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                              training: training, momentum: momentum, eps: eps)
        if training { numBatchesTracked.values[0] += 1 }
        return y
    }
}

/// torch.nn.BatchNorm1d: the same layer on (N, C) or (N, C, L) inputs.
public typealias BatchNorm1d = BatchNorm2d
