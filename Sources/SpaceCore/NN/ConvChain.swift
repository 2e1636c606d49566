// Running a Sequential the way the engine is fastest: consecutive convolutions and the pointwise
// layers between them (PixelShuffle, CELU/ELU, GroupNorm/BatchNorm2d) are fused into
// `pointwiseConv2d` steps on blocked feature maps; any other layer runs as itself on NCHW.
//
// The plan is read off the layer list at each call (a few dozen type checks), so a plugin's Sequential of
// standard layers is fused without registering anything, and a layer the planner does not know simply
// ends a fused run. Results equal running the layers one by one, up to float rounding order.

/// A convolution to run: weights and geometry (what a Conv2d holds, or weights built by a model, such
/// as two heads concatenated into one convolution).
public struct ConvolutionSpec {
    public var weight: Tensor
    public var bias: Tensor?
    public var stride: (Int, Int)
    public var padding: (Int, Int)
    /// The layer to charge in profiles.
    public var module: Module?

    public init(weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0), module: Module? = nil) {
        self.weight = weight; self.bias = bias; self.stride = stride; self.padding = padding; self.module = module
    }

    public init(_ conv: Conv2d) {
        self.init(weight: conv.weight, bias: conv.bias, stride: (conv.stride, conv.stride),
                  padding: (conv.padding, conv.padding), module: conv)
    }

    var outputChannels: Int { weight.shape[0] }
}

/// Whether Sequentials fuse their convolution chains (on by default; `ConvolutionEngine.im2col` or this
/// flag set to false runs every layer on its own, for comparison).
public enum ChainFusion {
    nonisolated(unsafe) public static var isEnabled = true
    public static var active: Bool { isEnabled && ConvolutionEngine.current == .onednn }
}

/// One step of a fused run.
enum ChainStep {
    case conv(ConvolutionSpec)
    case stageConv([Layer], PointwiseStage, ConvolutionSpec)
    case stage([Layer], PointwiseStage)
    case layer(Layer)
}

/// What flows between steps: a feature map, or (after a Flatten, a Linear...) any tensor.
enum ChainValue {
    case map(FeatureMap)
    case tensor(Tensor)

    func asTensor() throws -> Tensor {
        switch self {
        case .map(let m): return try m.nchw()
        case .tensor(let t): return t
        }
    }

    func asMap() throws -> FeatureMap {
        switch self {
        case .map(let m): return m
        case .tensor(let t): return try FeatureMap(nchw: t)
        }
    }
}

enum ConvChain {
    /// The pointwise stage a run of layers forms, if they form one: an optional PixelShuffle first, then at
    /// most one CELU/ELU and at most one GroupNorm/BatchNorm2d in either order.
    static func stage(of layers: [Layer]) -> PointwiseStage? {
        guard !layers.isEmpty else { return nil }
        var stage = PointwiseStage()
        var rest = layers[...]
        if let ps = rest.first as? PixelShuffle { stage.shuffle = ps.upscaleFactor; rest = rest.dropFirst() }
        var actIndex: Int? = nil, normIndex: Int? = nil
        for (i, layer) in rest.enumerated() {
            switch layer {
            case let a as CELU:
                guard actIndex == nil else { return nil }
                stage.activation = .celu(alpha: a.alpha); actIndex = i
            case let a as ELU:
                guard actIndex == nil else { return nil }
                stage.activation = .elu(alpha: a.alpha); actIndex = i
            case let g as GroupNorm:
                guard normIndex == nil else { return nil }
                stage.norm = .group(g); normIndex = i
            case let b as BatchNorm2d:
                guard normIndex == nil else { return nil }
                stage.norm = .batch(b); normIndex = i
            default: return nil
            }
        }
        stage.activationFirst = (actIndex ?? 0) <= (normIndex ?? Int.max)
        return stage
    }

    static func isPointwise(_ layer: Layer) -> Bool {
        layer is PixelShuffle || layer is CELU || layer is ELU || layer is GroupNorm || layer is BatchNorm2d
    }

    /// Groups `layers` (plus an optional convolution appended after them) into steps.
    static func plan(_ layers: ArraySlice<Layer>, head: ConvolutionSpec?) -> [ChainStep] {
        enum Token { case conv(ConvolutionSpec), pointwise([Layer]), other(Layer) }
        var tokens: [Token] = []
        for layer in layers {
            if let c = layer as? Conv2d { tokens.append(.conv(ConvolutionSpec(c))); continue }
            if isPointwise(layer) {
                if case .pointwise(let run)? = tokens.last { tokens[tokens.count - 1] = .pointwise(run + [layer]) }
                else { tokens.append(.pointwise([layer])) }
                continue
            }
            tokens.append(.other(layer))
        }
        if let head { tokens.append(.conv(head)) }
        var steps: [ChainStep] = []
        var i = 0
        while i < tokens.count {
            switch tokens[i] {
            case .conv(let spec): steps.append(.conv(spec))
            case .other(let layer): steps.append(.layer(layer))
            case .pointwise(let run):
                if let stage = stage(of: run) {
                    if i + 1 < tokens.count, case .conv(let spec) = tokens[i + 1] {
                        steps.append(.stageConv(run, stage, spec))
                        i += 1
                    } else {
                        steps.append(.stage(run, stage))
                    }
                } else {
                    steps += run.map { .layer($0) }
                }
            }
            i += 1
        }
        return steps
    }

    /// Whether a step consumes a blocked map whose channels come from a convolution with `outputChannels`
    /// outputs: the stage's shuffle factor, or nil when the step is not a fusable stage for them.
    static func fusedShuffle(of step: ChainStep?, outputChannels o: Int) -> Int? {
        let stage: PointwiseStage
        switch step {
        case .stageConv(_, let s, _)?: stage = s
        case .stage(_, let s)?: stage = s
        default: return nil
        }
        let r2 = stage.shuffle * stage.shuffle
        guard o % r2 == 0, (o / r2) % 16 == 0, o % 16 == 0 else { return nil }
        if let norm = stage.norm, norm.channels != o / r2 { return nil }
        return stage.shuffle
    }

    /// Runs `steps` from `input`.
    static func run(_ steps: [ChainStep], _ input: ChainValue) throws -> ChainValue {
        var x = input
        // The shuffle factor the current blocked map's channels were permuted for (1: natural order).
        var permutedFor = 1
        var index = 0
        while index < steps.count {
            let step = steps[index]
            let next = index + 1 < steps.count ? steps[index + 1] : nil
            let afterNext = index + 2 < steps.count ? steps[index + 2] : nil
            switch step {
            case .conv(let spec):
                let map = try x.asMap()
                if case .stageConv(let layers, let stage, let spec2)? = next,
                   let out = try recomputingFirst(map, spec, layers, stage, spec2, next: afterNext, permutedFor: &permutedFor) {
                    x = .map(out)
                    index += 2
                    continue
                }
                x = .map(try convolve(map, spec, next: next, permutedFor: &permutedFor))
            case .stageConv(let layers, let stage, let spec):
                if case .map(let map) = x, map.format == .blocked16, stage.shuffle == permutedFor,
                   (try? stage.descriptor(map)) != nil {
                    x = .map(try Profiler.scope(spec.module ?? layers[0]) {
                        try convolve(map, spec, next: next, permutedFor: &permutedFor, stage: stage)
                    })
                } else {
                    x = try runGeneric(layers, x)
                    permutedFor = 1
                    x = .map(try convolve(x.asMap(), spec, next: next, permutedFor: &permutedFor))
                }
            case .stage(let layers, let stage):
                if case .map(let map) = x, map.format == .blocked16, stage.shuffle == permutedFor,
                   (try? stage.descriptor(map)) != nil {
                    x = .map(try Profiler.scope(layers.last!) { try pointwise(map, stage) })
                } else {
                    x = try runGeneric(layers, x)
                }
                permutedFor = 1
            case .layer(let layer):
                x = try runGeneric([layer], x)
                permutedFor = 1
            }
            index += 1
        }
        return x
    }

    /// A first convolution whose output is several times larger than its input (the glimpse encoder's
    /// 3 -> 16 channels), fused with the stage and convolution after it into one op that stores only
    /// the input and recomputes the large map in backward. Nil when that does not apply (no gradients
    /// recorded, a small output, a stage that cannot take the output blocked).
    private static func recomputingFirst(_ x: FeatureMap, _ first: ConvolutionSpec, _ layers: [Layer], _ stage: PointwiseStage,
                                         _ second: ConvolutionSpec, next: ChainStep?, permutedFor: inout Int) throws -> FeatureMap? {
        guard GradMode.isEnabled, x.tensor.requiresGrad || first.weight.requiresGrad else { return nil }
        let o = first.outputChannels
        guard let r = fusedShuffle(of: .stageConv(layers, stage, second), outputChannels: o) else { return nil }
        let (kh, kw) = (first.weight.shape[2], first.weight.shape[3])
        let ho = (x.h + 2 * first.padding.0 - kh) / first.stride.0 + 1, wo = (x.w + 2 * first.padding.1 - kw) / first.stride.1 + 1
        guard ho >= 1, wo >= 1, o * ho * wo >= 4 * x.c * x.h * x.w else { return nil }
        var firstSpec = first
        if r > 1 {
            let order = shuffledChannelOrder(channels: o, shuffle: r)
            firstSpec.weight = try first.weight.indexSelect(dim: 0, order)
            firstSpec.bias = try first.bias?.indexSelect(dim: 0, order)
        }
        var secondSpec = second
        let o2 = second.outputChannels
        let shuffle2 = fusedShuffle(of: next, outputChannels: o2)
        if let r2 = shuffle2, r2 > 1 {
            let order = shuffledChannelOrder(channels: o2, shuffle: r2)
            secondSpec.weight = try second.weight.indexSelect(dim: 0, order)
            secondSpec.bias = try second.bias?.indexSelect(dim: 0, order)
        }
        let out = try Profiler.scope(second.module ?? layers[0]) {
            try convPointwiseConv2d(x, first: firstSpec, stage, second: secondSpec, outFormat: shuffle2 != nil ? .blocked16 : .nchw)
        }
        permutedFor = shuffle2 ?? 1
        return out
    }

    private static func runGeneric(_ layers: [Layer], _ x: ChainValue) throws -> ChainValue {
        var t = try x.asTensor()
        for layer in layers { t = try Profiler.scope(layer) { try layer(t) } }
        return .tensor(t)
    }

    /// One convolution (after `stage`, if given), its output blocked and channel-permuted when the next
    /// step is a stage that can be fused with it, NCHW otherwise.
    private static func convolve(_ x: FeatureMap, _ spec: ConvolutionSpec, next: ChainStep?, permutedFor: inout Int,
                                 stage: PointwiseStage? = nil) throws -> FeatureMap {
        var weight = spec.weight, bias = spec.bias
        let o = spec.outputChannels
        let shuffle = fusedShuffle(of: next, outputChannels: o)
        if let r = shuffle, r > 1 {
            let order = shuffledChannelOrder(channels: o, shuffle: r)
            weight = try weight.indexSelect(dim: 0, order)
            bias = try bias?.indexSelect(dim: 0, order)
        }
        let format: MemoryFormat = shuffle != nil ? .blocked16 : .nchw
        permutedFor = shuffle ?? 1
        let result: FeatureMap?
        if let stage {
            result = try pointwiseConv2d(x, stage, weight: weight, bias: bias, stride: spec.stride, padding: spec.padding,
                                         outFormat: format)
        } else if let module = spec.module {
            result = try Profiler.scope(module) {
                try conv2d(x, weight: weight, bias: bias, stride: spec.stride, padding: spec.padding, outFormat: format)
            }
        } else {
            result = try conv2d(x, weight: weight, bias: bias, stride: spec.stride, padding: spec.padding, outFormat: format)
        }
        if let result { return result }
        // oneDNN has no implementation for this description: the im2col engine, on NCHW.
        permutedFor = 1
        let y = try conv2dIm2col(x.nchw(), weight: spec.weight, bias: spec.bias, stride: spec.stride, padding: spec.padding)
        return try FeatureMap(nchw: y)
    }
}

extension Sequential {
    /// Runs the layers from `start` on a feature map with the convolution chains fused, then `head` (a
    /// convolution appended as if it were the last layer, fused with the stage before it). The result
    /// is in whatever format the last step leaves (blocked after a stage, NCHW after a convolution with
    /// an unblockable channel count or a generic layer).
    public func features(_ x: FeatureMap, from start: Int = 0, head: ConvolutionSpec? = nil) throws -> FeatureMap {
        let steps = ConvChain.plan(layers[start...], head: head)
        return try ConvChain.run(steps, .map(x)).asMap()
    }

    /// The fused path of `callAsFunction`: NCHW in, NCHW (or whatever rank the last layer makes) out.
    func runFused(_ x: Tensor) throws -> Tensor {
        try ConvChain.run(ConvChain.plan(layers[...], head: nil), .tensor(x)).asTensor()
    }
}
