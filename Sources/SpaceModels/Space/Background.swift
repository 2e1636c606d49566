import SpaceCore

/// What the background returns.
public struct BackgroundOutput {
    /// log of the K-component mixture likelihood per pixel, (B, 3, H, W).
    public var likelihood: Tensor
    /// The background reconstruction sum_k mask_k comp_k, (B, 3, H, W).
    public var bg: Tensor
    /// KL of the mask and component latents against the conditional priors, per image (B).
    public var kl: Tensor
    /// Masks after stick-breaking (B, K, 1, H, W) and components (B, K, 3, H, W).
    public var masks: Tensor
    public var comps: Tensor
}

/// SPACE's background: K components, each a mask from a recurrent stick-breaking process and an image,
/// with a learned autoregressive prior over the mask latents and a component prior conditioned on them.
public final class SpaceBackground: Module {
    @StateKey("image_enc") public var imageEnc: BackgroundImageEncoder
    @StateKey("rnn_mask") var rnnMask: LSTMCell
    @StateKey("rnn_mask_h") var rnnMaskH: Tensor
    @StateKey("rnn_mask_c") var rnnMaskC: Tensor
    @StateKey("z_mask_0") var zMask0: Tensor
    @StateKey("predict_mask") public var predictMask: LatentPredictor
    @StateKey("mask_decoder") public var maskDecoder: MaskDecoder
    @StateKey("comp_encoder") public var compEncoder: ComponentEncoder
    @StateKey("comp_decoder") public var compDecoder: ComponentDecoder
    @StateKey("rnn_mask_prior") var rnnMaskPrior: LSTMCell
    @StateKey("rnn_mask_h_prior") var rnnMaskHPrior: Tensor
    @StateKey("rnn_mask_c_prior") var rnnMaskCPrior: Tensor
    @StateKey("predict_mask_prior") public var predictMaskPrior: LatentPredictor
    @StateKey("predict_comp_prior") public var predictCompPrior: LatentPredictor
    public let arch: SpaceArch

    public init(arch: SpaceArch) {
        self.arch = arch
        super.init()
        imageEnc = SpaceImageEncoderBg(arch: arch)
        rnnMask = LSTMCell(inputSize: arch.zMaskDim + arch.imgEncDimBg, hiddenSize: arch.rnnMaskHiddenDim)
        rnnMaskH = Tensor.zeros([arch.rnnMaskHiddenDim], requiresGrad: true)
        rnnMaskC = Tensor.zeros([arch.rnnMaskHiddenDim], requiresGrad: true)
        zMask0 = Tensor.zeros([arch.zMaskDim], requiresGrad: true)
        predictMask = SpacePredictMask(hidden: arch.rnnMaskHiddenDim, latent: arch.zMaskDim)
        maskDecoder = SpaceMaskDecoder(arch: arch)
        compEncoder = SpaceCompEncoder(arch: arch)
        compDecoder = arch.K > 1 ? SpaceCompDecoder(arch: arch) : SpaceCompDecoderStrong(arch: arch)
        rnnMaskPrior = LSTMCell(inputSize: arch.zMaskDim, hiddenSize: arch.rnnMaskPriorHiddenDim)
        rnnMaskHPrior = Tensor.zeros([arch.rnnMaskPriorHiddenDim], requiresGrad: true)
        rnnMaskCPrior = Tensor.zeros([arch.rnnMaskPriorHiddenDim], requiresGrad: true)
        predictMaskPrior = SpacePredictMask(hidden: arch.rnnMaskPriorHiddenDim, latent: arch.zMaskDim)
        predictCompPrior = SpacePredictComp(arch: arch)
    }

    /// Stick-breaking: mask_k = m_k * prod_{j<k} (1 - m_j) for k < K-1, and the last takes what remains,
    /// so the K masks sum to 1 at every pixel. masks: (B, K, 1, H, W) in (0, 1).
    public static func stickBreaking(_ masks: Tensor) throws -> Tensor {
        let k = masks.shape[1]
        var remained = Tensor.ones(try masks.select(dim: 1, index: 0).shape)
        var out: [Tensor] = []
        for i in 0..<k {
            let mask = i < k - 1 ? try masks.select(dim: 1, index: i) * remained : remained
            remained = try remained - mask
            out.append(mask)
        }
        return try Tensor.stack(out, dim: 1)
    }

    public func callAsFunction(_ x: Tensor, globalStep: Int, noise: NoiseSource) throws -> BackgroundOutput {
        let b = x.shape[0], k = arch.K
        let (h, w) = (x.shape[2], x.shape[3])
        let xEnc = try imageEnc(x)

        // Posterior: a recurrent pass over the K slots.
        var zMask = try zMask0.expand([b, arch.zMaskDim])
        var state = (h: try rnnMaskH.expand([b, arch.rnnMaskHiddenDim]), c: try rnnMaskC.expand([b, arch.rnnMaskHiddenDim]))
        var zMasks: [Tensor] = [], maskPosts: [Normal] = []
        for i in 0..<k {
            state = try rnnMask(Tensor.cat([zMask, xEnc], dim: 1), state: state)
            let (loc, scale) = try predictMask(state.h)
            let post = try Normal(loc: loc, scale: scale)
            zMask = try post.rsample(noise: noise, name: "bg.z_mask.\(i)")
            zMasks.append(zMask)
            maskPosts.append(post)
        }
        let stacked: Tensor
        if maskDecoder is SpaceMaskDecoder {
            // SPACE's mask decoder treats every latent on its own (group norm, no batch statistics), so
            // the K slots decode as one batch of K * B: fewer, larger convolutions.
            let all = try maskDecoder(Tensor.cat(zMasks, dim: 0))
            stacked = try all.reshape([k, b] + Array(all.shape.dropFirst())).transpose(0, 1)
        } else {
            stacked = try Tensor.stack(zMasks.map { try maskDecoder($0) }, dim: 1)
        }
        let sbp = try SpaceBackground.stickBreaking(stacked)
        let flatMasks = try sbp.reshape([b * k, 1, h, w])

        // Components from log-mask and image.
        let xRep = try x.repeatInterleave(k, dim: 0)
        let compInput = try Tensor.cat([(flatMasks + 1e-5).log(), xRep], dim: 1)
        let (compLoc, compScale) = try compEncoder(compInput)
        let zComp = try Normal(loc: compLoc, scale: compScale).rsample(noise: noise, name: "bg.z_comp")
        let comps = try compDecoder(zComp).reshape([b, k, 3, h, w])
        let masks5 = try flatMasks.reshape([b, k, 1, h, w])

        // Mixture likelihood over the components.
        let compDist = try Normal(loc: comps, scale: Tensor.full(comps.shape, arch.bgSigma))
        let logLike = try compDist.logProb(x.unsqueeze(dim: 1).expand(comps.shape))
        let likelihood = try (logLike + (masks5 + 1e-5).log()).logsumexp(dim: 1)
        let bg = try (comps * masks5).sum(dim: 1)

        // KL against the conditional priors, conditioned on the posterior samples.
        let locK = try compLoc.reshape([b, k, -1]), scaleK = try compScale.reshape([b, k, -1])
        var prior = (h: try rnnMaskHPrior.expand([b, arch.rnnMaskPriorHiddenDim]), c: try rnnMaskCPrior.expand([b, arch.rnnMaskPriorHiddenDim]))
        var kl: Tensor? = nil
        for i in 0..<k {
            let (pl, ps) = try predictMaskPrior(prior.h)
            let (cl, cs) = try predictCompPrior(zMasks[i])
            let klMask = try klDivergence(maskPosts[i], Normal(loc: pl, scale: ps)).sum(dim: 1)
            let compPost = try Normal(loc: locK.select(dim: 1, index: i), scale: scaleK.select(dim: 1, index: i))
            let klComp = try klDivergence(compPost, Normal(loc: cl, scale: cs)).sum(dim: 1)
            let term = try klMask + klComp
            kl = try kl.map { try $0 + term } ?? term
            if i < k - 1 { prior = try rnnMaskPrior(zMasks[i], state: prior) }
        }
        return BackgroundOutput(likelihood: likelihood, bg: bg, kl: kl ?? Tensor.zeros([b]), masks: masks5, comps: comps)
    }
}

/// Background image encoder: four stride-2 convs with BatchNorm and ELU, then a linear layer.
public final class SpaceImageEncoderBg: Module, BackgroundImageEncoder {
    public let enc: Sequential
    public init(arch: SpaceArch) {
        let embed = arch.imgShape[0] / 16
        enc = Sequential(
            conv(3, 64, 3, 2, 1), bn(64), ELU(),
            conv(64, 64, 3, 2, 1), bn(64), ELU(),
            conv(64, 64, 3, 2, 1), bn(64), ELU(),
            conv(64, 64, 3, 2, 1), bn(64), ELU(),
            Flatten(),
            Linear(inputCount: 64 * embed * embed, outputCount: arch.imgEncDimBg), ELU())
        super.init()
    }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try enc(x) }
}

/// z_mask posterior/prior head: hidden state -> (loc, softplus(.) + 1e-4).
public final class SpacePredictMask: Module, LatentPredictor {
    public let fc: Linear
    let latent: Int
    public init(hidden: Int, latent: Int) {
        self.latent = latent
        fc = Linear(inputCount: hidden, outputCount: latent * 2)
        super.init()
    }
    public func callAsFunction(_ h: Tensor) throws -> (Tensor, Tensor) {
        try locAndScale(fc(h), dim: latent, minScale: 1e-4)
    }
}

/// Component prior: z_mask -> an MLP -> (loc, softplus(.) + 1e-4) of z_comp.
public final class SpacePredictComp: Module, LatentPredictor {
    public let mlp: Sequential
    let latent: Int
    public init(arch: SpaceArch) {
        latent = arch.zCompDim
        let hdim = arch.predictCompHiddenDim
        mlp = Sequential(Linear(inputCount: arch.zMaskDim, outputCount: hdim), ELU(),
                         Linear(inputCount: hdim, outputCount: hdim), ELU(),
                         Linear(inputCount: hdim, outputCount: arch.zCompDim * 2))
        super.init()
    }
    public func callAsFunction(_ h: Tensor) throws -> (Tensor, Tensor) {
        try locAndScale(mlp(h), dim: latent, minScale: 1e-4)
    }
}

/// Mask decoder: z_mask (B, L) -> a 128x128 mask through 1x1 convs and pixel shuffles.
public final class SpaceMaskDecoder: Module, MaskDecoder {
    public let dec: Sequential
    public init(arch: SpaceArch) {
        dec = Sequential(
            conv(arch.zMaskDim, 256, 1), CELU(), gn(16, 256),
            conv(256, 256 * 4 * 4, 1), PixelShuffle(4), CELU(), gn(16, 256),
            conv(256, 256, 3, 1, 1), CELU(), gn(16, 256),
            conv(256, 128 * 2 * 2, 1), PixelShuffle(2), CELU(), gn(16, 128),
            conv(128, 128, 3, 1, 1), CELU(), gn(16, 128),
            conv(128, 64 * 4 * 4, 1), PixelShuffle(4), CELU(), gn(8, 64),
            conv(64, 64, 3, 1, 1), CELU(), gn(8, 64),
            conv(64, 16 * 4 * 4, 1), PixelShuffle(4), CELU(), gn(4, 16),
            conv(16, 16, 3, 1, 1), CELU(), gn(4, 16),
            conv(16, 16, 3, 1, 1), CELU(), gn(4, 16),
            conv(16, 1, 3, 1, 1))
        super.init()
    }
    public func callAsFunction(_ zMask: Tensor) throws -> Tensor {
        try dec(zMask.reshape([zMask.shape[0], -1, 1, 1])).sigmoid()
    }
}

/// Component encoder: (B*K, 4, H, W) -> (loc, softplus(.) + 1e-4) of z_comp.
public final class SpaceCompEncoder: Module, ComponentEncoder {
    public let enc: Sequential
    let latent: Int
    public init(arch: SpaceArch) {
        latent = arch.zCompDim
        let embed = arch.imgShape[0] / 16
        enc = Sequential(
            conv(4, 32, 3, 2, 1), bn(32), ELU(),
            conv(32, 32, 3, 2, 1), bn(32), ELU(),
            conv(32, 64, 3, 2, 1), bn(64), ELU(),
            conv(64, 64, 3, 2, 1), bn(64), ELU(),
            Flatten(),
            Linear(inputCount: 64 * embed * embed, outputCount: arch.zCompDim * 2))
        super.init()
    }
    public func callAsFunction(_ x: Tensor) throws -> (Tensor, Tensor) {
        try locAndScale(enc(x), dim: latent, minScale: 1e-4)
    }
}

/// Spatial broadcast decoder (K > 1): z_comp tiled over an (H+8) x (W+8) grid with x, y coordinates,
/// then four unpadded 3x3 convs down to H x W.
public final class SpaceCompDecoder: Module, ComponentDecoder {
    public let decoder: Sequential
    let arch: SpaceArch
    public init(arch: SpaceArch) {
        self.arch = arch
        decoder = Sequential(
            conv(arch.zCompDim + 2, 32, 3, 1), bn(32), ELU(),
            conv(32, 32, 3, 1), bn(32), ELU(),
            conv(32, 32, 3, 1), bn(32), ELU(),
            conv(32, 32, 3, 1), bn(32), ELU(),
            conv(32, 3, 1, 1))
        super.init()
    }

    /// (B, L) -> (B, L + 2, height, width): the latent broadcast, then x and y in [-1, 1].
    public static func spatialBroadcast(_ z: Tensor, width: Int, height: Int) throws -> Tensor {
        let (b, l) = (z.shape[0], z.shape[1])
        let tiled = try z.reshape([b, l, 1, 1]).expand([b, l, height, width])
        return try Tensor.cat([tiled, coordinateGrid(width: width, height: height).expand([b, 2, height, width])], dim: 1)
    }

    /// (1, 2, height, width): x, then y, each from -1 to 1 (torch.linspace).
    public static func coordinateGrid(width: Int, height: Int) -> Tensor {
        let xs = Tensor.linspace(-1, 1, count: width), ys = Tensor.linspace(-1, 1, count: height)
        let coords = Tensor.zeros([1, 2, height, width])
        for i in 0..<height {
            for j in 0..<width {
                coords.pointer[i * width + j] = xs.pointer[j]
                coords.pointer[height * width + i * width + j] = ys.pointer[i]
            }
        }
        return coords
    }

    public func callAsFunction(_ zComp: Tensor) throws -> Tensor {
        let (h, w) = (arch.imgShape[0], arch.imgShape[1])
        if ChainFusion.active, let first = decoder[0] as? Conv2d, first.padding == 0 {
            return try broadcastFirst(zComp, first, width: w + 8, height: h + 8).nchw().sigmoid()
        }
        return try decoder(SpaceCompDecoder.spatialBroadcast(zComp, width: w + 8, height: h + 8)).sigmoid()
    }

    /// The decoder with its first convolution computed without building the broadcast input. The latent
    /// part of that input is constant over the map and the convolution is unpadded, so every output
    /// position sees all kh x kw taps of it: its contribution is the latent times the weights summed over
    /// the taps, one vector per image. The coordinate part is the same for every image: one convolution
    /// of a single map. The sum of the two is the first layer's output, exactly in real arithmetic
    /// (float rounding differs from the direct convolution by the order of the additions).
    func broadcastFirst(_ zComp: Tensor, _ first: Conv2d, width: Int, height: Int) throws -> FeatureMap {
        let (b, l) = (zComp.shape[0], zComp.shape[1])
        let o = first.outputChannels
        let latentTaps = try first.weight.narrow(dim: 1, start: 0, length: l).sum(dims: [2, 3], keepDim: false)
        let perImage = try linear(zComp, weight: latentTaps, bias: first.bias)  // (B, O)
        let coords = SpaceCompDecoder.coordinateGrid(width: width, height: height)
        let coordWeight = try first.weight.narrow(dim: 1, start: l, length: first.inputChannels - l)
        let map = try conv2dFeatures(FeatureMap(nchw: coords), weight: coordWeight, stride: first.stride,
                                     format: MemoryFormat.preferred(channels: o))
        // (B, O) + (1, O, Ho, Wo), broadcast in the map's format.
        let shape = FeatureMap.physicalShape(map.format, n: 1, c: o, h: map.h, w: map.w)
        let vector: Tensor
        switch map.format {
        case .blocked16: vector = try perImage.reshape([b, o / 16, 1, 1, 16])
        case .nchw: vector = try perImage.reshape([b, o, 1, 1])
        case .nhwc: vector = try perImage.reshape([b, 1, 1, o])
        }
        let sum = try vector + map.tensor.reshape(shape)
        let z0 = FeatureMap(tensor: sum, format: map.format, n: b, c: o, h: map.h, w: map.w)
        return try decoder.features(z0, from: 1)
    }
}

/// The strong component decoder used when K = 1: 1x1 convs and pixel shuffles up to H x W.
public final class SpaceCompDecoderStrong: Module, ComponentDecoder {
    public let dec: Sequential
    public init(arch: SpaceArch) {
        dec = Sequential(
            conv(arch.zCompDim, 256, 1), CELU(), gn(16, 256),
            conv(256, 256 * 4 * 4, 1), PixelShuffle(4), CELU(), gn(16, 256),
            conv(256, 256, 3, 1, 1), CELU(), gn(16, 256),
            conv(256, 128 * 4 * 4, 1), PixelShuffle(4), CELU(), gn(16, 128),
            conv(128, 128, 3, 1, 1), CELU(), gn(16, 128),
            conv(128, 64 * 2 * 2, 1), PixelShuffle(2), CELU(), gn(8, 64),
            conv(64, 64, 3, 1, 1), CELU(), gn(8, 64),
            conv(64, 16 * 4 * 4, 1), PixelShuffle(4), CELU(), gn(4, 16),
            conv(16, 16, 3, 1, 1), CELU(), gn(4, 16),
            conv(16, 16, 3, 1, 1), CELU(), gn(4, 16),
            conv(16, 3, 3, 1, 1))
        super.init()
    }
    public func callAsFunction(_ zComp: Tensor) throws -> Tensor {
        try dec(zComp.reshape([zComp.shape[0], zComp.shape[1], 1, 1])).sigmoid()
    }
}

/// conv2d without bias between feature maps, on the engine when it can, else on NCHW.
func conv2dFeatures(_ x: FeatureMap, weight: Tensor, stride: Int, format: MemoryFormat) throws -> FeatureMap {
    if let y = try conv2d(x, weight: weight, bias: nil, stride: (stride, stride), padding: (0, 0), outFormat: format) { return y }
    return try FeatureMap(nchw: conv2d(x.nchw(), weight: weight, bias: nil, stride: stride, padding: 0))
}
