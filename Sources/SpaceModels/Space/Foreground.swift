import Foundation
import SpaceCore

/// What the foreground returns: the per-pixel likelihood terms, the reconstruction, the maps and the
/// per-image KL and boundary terms, plus what the reference logs.
public struct ForegroundOutput {
    /// log N(x; fg, fg_sigma), (B, 3, H, W).
    public var likelihood: Tensor
    /// The foreground reconstruction y_nobg, (B, 3, H, W).
    public var fg: Tensor
    /// The foreground alpha map, (B, 1, H, W).
    public var alphaMap: Tensor
    /// Total foreground KL per image, (B).
    public var kl: Tensor
    /// Boundary loss per image (to minimise), (B); zeros when off.
    public var boundaryLoss: Tensor
    public var zPres: Tensor, zPresProb: Tensor, zWhere: Tensor, zWhat: Tensor, zDepth: Tensor
    public var zScale: Tensor, zShift: Tensor
    public var klZWhat: Tensor, klZWhere: Tensor, klZPres: Tensor, klZDepth: Tensor
}

/// SPACE's foreground: a G x G grid of cells, each with z_pres, z_where, z_depth and z_what.
public final class SpaceForeground: Module {
    @StateKey("img_encoder") public var imgEncoder: ForegroundImageEncoder
    @StateKey("z_what_net") public var zWhatNet: GlimpseEncoder
    @StateKey("glimpse_dec") public var glimpseDec: GlimpseDecoder

    // Buffers, in the reference's registration order (it saves them, so checkpoints carry them).
    @Buffer public var tau: Tensor
    @Buffer("prior_z_pres_prob") public var priorZPresProb: Tensor
    @Buffer("prior_what_mean") var priorWhatMean: Tensor
    @Buffer("prior_what_std") var priorWhatStd: Tensor
    @Buffer("prior_depth_mean") var priorDepthMean: Tensor
    @Buffer("prior_depth_std") var priorDepthStd: Tensor
    /// Placeholder the reference keeps for loading old checkpoints; unused, never trained.
    @StateKey("boundary_filter") var boundaryFilter: Conv2d
    @Buffer("prior_scale_mean") var legacyPriorScaleMean: Tensor
    @Buffer("prior_scale_std") var legacyPriorScaleStd: Tensor
    @Buffer("prior_shift_mean") var legacyPriorShiftMean: Tensor
    @Buffer("prior_shift_std") var legacyPriorShiftStd: Tensor

    /// The annealed z_scale prior mean (not saved, recomputed from the step, as in the reference).
    public private(set) var priorScaleMean: Float
    public let arch: SpaceArch
    /// (glimpse, glimpse): 1/glimpse^2 on a border of width 6, 0 inside.
    @Transient var boundaryKernel: Tensor

    public init(arch: SpaceArch, imgEncoder: ForegroundImageEncoder? = nil, zWhatNet: GlimpseEncoder? = nil,
                glimpseDec: GlimpseDecoder? = nil) {
        self.arch = arch
        priorScaleMean = arch.zScaleMeanStartValue
        boundaryKernel = SpaceForeground.makeBoundaryKernel(size: arch.glimpseSize, width: 6)
        super.init()
        self.imgEncoder = imgEncoder ?? SpaceImageEncoderFg(arch: arch)
        self.zWhatNet = zWhatNet ?? SpaceGlimpseEncoder(arch: arch)
        self.glimpseDec = glimpseDec ?? SpaceGlimpseDecoder(arch: arch)
        tau = Tensor(scalar: arch.tauStartValue)
        priorZPresProb = Tensor(scalar: arch.zPresStartValue)
        priorWhatMean = Tensor.zeros([1]); priorWhatStd = Tensor.ones([1])
        priorDepthMean = Tensor.zeros([1]); priorDepthStd = Tensor.ones([1])
        boundaryFilter = Conv2d(inputChannels: 1, outputChannels: 1, kernelSize: 32, bias: false)
        boundaryFilter.weight.requiresGrad = false
        legacyPriorScaleMean = Tensor.full([2, 1, 1], arch.zScaleMeanStartValue)
        legacyPriorScaleStd = Tensor.full([2, 1, 1], arch.zScaleStdValue)
        legacyPriorShiftMean = Tensor.zeros([2, 1, 1])
        legacyPriorShiftStd = Tensor.ones([2, 1, 1])
    }

    static func makeBoundaryKernel(size: Int, width: Int) -> Tensor {
        let k = Tensor.full([size, size], 1 / Float(size * size))
        for i in width..<(size - width) { for j in width..<(size - width) { k.pointer[i * size + j] = 0 } }
        return k
    }

    /// Sets tau, the z_pres prior probability and the z_scale prior mean for `step`.
    public func anneal(step: Int) {
        let a = arch
        priorZPresProb.pointer[0] = linearAnnealing(step: step, startStep: a.zPresStartStep, endStep: a.zPresEndStep,
                                                    startValue: a.zPresStartValue, endValue: a.zPresEndValue)
        priorScaleMean = linearAnnealing(step: step, startStep: a.zScaleMeanStartStep, endStep: a.zScaleMeanEndStep,
                                         startValue: a.zScaleMeanStartValue, endValue: a.zScaleMeanEndValue)
        tau.pointer[0] = linearAnnealing(step: step, startStep: a.tauStartStep, endStep: a.tauEndStep,
                                         startValue: a.tauStartValue, endValue: a.tauEndValue)
    }

    public func callAsFunction(_ x: Tensor, globalStep: Int, noise: NoiseSource) throws -> ForegroundOutput {
        let b = x.shape[0], g = arch.G, n = b * g * g
        let (h, w) = (arch.imgShape[0], arch.imgShape[1]), gs = arch.glimpseSize
        anneal(step: globalStep)

        let lat = try imgEncoder(x, tau: tau.pointer[0], noise: noise)
        let zWhere = try lat.zWhere.reshape([n, 4])
        let imageIndex = (0..<n).map { $0 / (g * g) }

        // Glimpses (N, 3, gs, gs) cut from each image at each cell's box.
        let xAtt = try spatialTransform(x, zWhere: zWhere, outSize: [n, 3, gs, gs], inverse: false, imageIndex: imageIndex)
        let (zWhat, zWhatPost) = try zWhatNet(xAtt, noise: noise)
        let (oAtt, alphaAtt) = try glimpseDec(zWhat)
        let zPresCell = try lat.zPres.reshape([n, 1, 1, 1])
        let alphaAttHat = try alphaAtt * zPresCell
        let yAtt = try alphaAttHat * oAtt

        // Depth-weighted importance; glimpses pasted back to full resolution and blended by the softmax
        // of the importance over all cells at each pixel (a cell that does not reach a pixel has
        // importance 0 there), in one fused sparse op that never builds per-cell full-size canvases.
        let importance = try alphaAttHat * 100.0 * (-lat.zDepth.reshape([n, 1, 1, 1])).sigmoid()
        let boundaryOn = arch.boundaryLoss && globalStep <= arch.blOffStep
        let boundaryKernel = boundaryOn ? try self.boundaryKernel.reshape([1, 1, gs, gs]) * zPresCell : nil
        let pasted = try compositeGlimpses(weighted: Tensor.cat([yAtt, alphaAttHat], dim: 1), importance: importance,
                                           summed: boundaryKernel, affine: glimpseInverseAffine(zWhere: zWhere),
                                           cellsPerImage: g * g, canvas: (h, w))
        let yNoBg = try pasted.weighted.narrow(dim: 1, start: 0, length: 3)
        let alphaMap = try pasted.weighted.narrow(dim: 1, start: 3, length: 1)

        // KL divergences against the priors, each (B, G*G, D), reduced to (B).
        let klZPres = try klDivergenceBernoulli(logits: lat.zPresLogits, priorProb: priorZPresProb)
        let klZDepth = try klDivergence(lat.zDepthPost, Normal(loc: priorDepthMean, scale: priorDepthStd))
        let klZScale = try klDivergence(lat.zScalePost, Normal(loc: Tensor(scalar: priorScaleMean), scale: Tensor(scalar: arch.zScaleStdValue)))
        let klZShift = try klDivergence(lat.zShiftPost, Normal(loc: Tensor(scalar: 0), scale: Tensor(scalar: 1)))
        let zWhatPostCells = try Normal(loc: zWhatPost.loc.reshape([b, g * g, arch.zWhatDim]),
                                        scale: zWhatPost.scale.reshape([b, g * g, arch.zWhatDim]))
        let klZWhat = try klDivergence(zWhatPostCells, Normal(loc: priorWhatMean, scale: priorWhatStd))
        func perImage(_ t: Tensor) throws -> Tensor { try t.flatten(start: 1).sum(dim: 1) }
        let (kPres, kDepth, kScale, kShift, kWhat) = (try perImage(klZPres), try perImage(klZDepth), try perImage(klZScale),
                                                      try perImage(klZShift), try perImage(klZWhat))
        let klZWhere = try kScale + kShift

        // Boundary loss: penalises alpha where a glimpse's border lands.
        var boundaryLoss = Tensor.zeros([b])
        if let summed = pasted.summed {
            let overlap = try summed * 1000 * alphaMap
            let p = try Normal(loc: Tensor(scalar: 0), scale: Tensor(scalar: 0.7))
            boundaryLoss = try -(perImage(p.logProb(overlap)))
        }

        let likelihood = try Normal(loc: yNoBg, scale: Tensor(scalar: arch.fgSigma)).logProb(x)
        let kl = try kWhat + klZWhere + kPres + kDepth
        return ForegroundOutput(likelihood: likelihood, fg: yNoBg, alphaMap: alphaMap, kl: kl, boundaryLoss: boundaryLoss,
                                zPres: lat.zPres, zPresProb: lat.zPresLogits.sigmoid(), zWhere: lat.zWhere,
                                zWhat: try zWhat.reshape([b, g * g, arch.zWhatDim]), zDepth: lat.zDepth,
                                zScale: lat.zScale, zShift: lat.zShift,
                                klZWhat: kWhat, klZWhere: klZWhere, klZPres: kPres, klZDepth: kDepth)
    }
}

/// The latent variables the foreground image encoder infers for every cell, each (B, G*G, D).
public struct CellLatents {
    public var zPres: Tensor, zDepth: Tensor, zScale: Tensor, zShift: Tensor, zWhere: Tensor
    public var zPresLogits: Tensor
    public var zDepthPost: Normal, zScalePost: Normal, zShiftPost: Normal
}

/// SPACE's foreground image encoder: a CNN to a (B, E, G, G) grid, lateral and concatenation stages,
/// and 1x1 heads for z_pres, z_depth, z_scale and z_shift.
public final class SpaceImageEncoderFg: Module, ForegroundImageEncoder {
    public let enc: Sequential
    @StateKey("enc_lat") var encLat: Sequential
    @StateKey("enc_cat") var encCat: Sequential
    @StateKey("z_scale_net") var zScaleNet: Conv2d
    @StateKey("z_shift_net") var zShiftNet: Conv2d
    @StateKey("z_pres_net") var zPresNet: Conv2d
    @StateKey("z_depth_net") var zDepthNet: Conv2d
    /// (2, G, G): the cell centre offsets (x, y) of each cell.
    @Buffer var offset: Tensor
    let arch: SpaceArch

    public init(arch: SpaceArch) {
        self.arch = arch
        let g = arch.G, e = arch.imgEncDimFg
        // Strides chosen so that a 128-pixel image ends as a G x G grid.
        let lastStride = g == 8 || g == 4 ? 2 : 1
        let secondToLastStride = g == 4 ? 2 : 1
        enc = Sequential(
            conv(3, 16, 4, 2, 1), CELU(), gn(4, 16),
            conv(16, 32, 4, 2, 1), CELU(), gn(8, 32),
            conv(32, 64, 4, 2, 1), CELU(), gn(8, 64),
            conv(64, 128, 3, secondToLastStride, 1), CELU(), gn(16, 128),
            conv(128, 256, 3, lastStride, 1), CELU(), gn(32, 256),
            conv(256, e, 1), CELU(), gn(16, e))
        super.init()
        encLat = Sequential(conv(e, e, 3, 1, 1), CELU(), gn(16, e), conv(e, e, 3, 1, 1), CELU(), gn(16, e))
        encCat = Sequential(conv(e * 2, 128, 3, 1, 1), CELU(), gn(16, 128))
        zScaleNet = conv(128, arch.zWhereScaleDim * 2, 1)
        zShiftNet = conv(128, arch.zWhereShiftDim * 2, 1)
        zPresNet = conv(128, arch.zPresDim, 1)
        zDepthNet = conv(128, arch.zDepthDim * 2, 1)
        let off = Tensor.zeros([2, g, g])
        for i in 0..<g { for j in 0..<g { off.pointer[i * g + j] = Float(j); off.pointer[g * g + i * g + j] = Float(i) } }
        offset = off
    }

    /// The four heads' outputs (z_scale, z_shift, z_pres, z_depth parameters), each (B, D, G, G).
    func heads(_ x: Tensor) throws -> (scale: Tensor, shift: Tensor, pres: Tensor, depth: Tensor) {
        let nets = [zScaleNet, zShiftNet, zPresNet, zDepthNet]
        if ChainFusion.active, nets.allSatisfy({ $0.kernelSize == 1 && $0.stride == 1 && $0.padding == 0 && $0.bias != nil }) {
            // The trunk on blocked feature maps (the lateral branch and the concatenation included), its
            // last CELU + GroupNorm fused with one 1x1 convolution holding all four heads' filters.
            let imgEnc = try enc.features(FeatureMap(nchw: x))
            let lateral = try encLat.features(imgEnc)
            if imgEnc.format == .blocked16 && lateral.format == .blocked16 {
                let joined = FeatureMap(tensor: try Tensor.cat([imgEnc.tensor, lateral.tensor], dim: 1), format: .blocked16,
                                        n: imgEnc.n, c: imgEnc.c + lateral.c, h: imgEnc.h, w: imgEnc.w)
                let weight = try Tensor.cat(nets.map { $0.weight }, dim: 0)
                let bias = try Tensor.cat(nets.map { $0.bias! }, dim: 0)
                let out = try encCat.features(joined, head: ConvolutionSpec(weight: weight, bias: bias, module: zScaleNet)).nchw()
                let parts = try out.split(sizes: nets.map { $0.outputChannels }, dim: 1)
                return (parts[0], parts[1], parts[2], parts[3])
            }
        }
        let imgEnc = try enc(x)
        let lateral = try encLat(imgEnc)
        let catEnc = try encCat(Tensor.cat([imgEnc, lateral], dim: 1))
        return (try zScaleNet(catEnc), try zShiftNet(catEnc), try zPresNet(catEnc), try zDepthNet(catEnc))
    }

    public func callAsFunction(_ x: Tensor, tau: Float, noise: NoiseSource) throws -> CellLatents {
        let g = arch.G
        let h = try heads(x)

        let zPresLogits = try cellsLast(h.pres.tanh() * 8.8)
        let zPresPost = NumericalRelaxedBernoulli(logits: zPresLogits, temperature: tau)
        let zPres = try zPresPost.rsample(noise: noise, name: "fg.z_pres").sigmoid()

        let depth = try h.depth.chunk(2, dim: 1)
        let zDepthPost = try Normal(loc: cellsLast(depth[0]), scale: cellsLast(depth[1]).softplus())
        let zDepth = try zDepthPost.rsample(noise: noise, name: "fg.z_depth")

        let scale = try h.scale.chunk(2, dim: 1)
        let zScalePost = try Normal(loc: cellsLast(scale[0]), scale: cellsLast(scale[1].softplus() + 1e-15))
        let zScale = try zScalePost.rsample(noise: noise, name: "fg.z_scale").sigmoid()

        let shift = try h.shift.chunk(2, dim: 1)
        let zShiftPost = try Normal(loc: cellsLast(shift[0]), scale: cellsLast(shift[1].softplus()))
        let zShiftLocal = try zShiftPost.rsample(noise: noise, name: "fg.z_shift")
        // Local shift in (-1, 1) around each cell centre, mapped to image coordinates in (-1, 1).
        let off = try offset.permute(1, 2, 0).reshape([g * g, 2])
        let zShift = try ((off + 0.5) + zShiftLocal.tanh()) * (2 / Float(g)) - 1

        let zWhere = try Tensor.cat([zScale, zShift], dim: -1)
        return CellLatents(zPres: zPres, zDepth: zDepth, zScale: zScale, zShift: zShift, zWhere: zWhere,
                           zPresLogits: zPresLogits, zDepthPost: zDepthPost, zScalePost: zScalePost, zShiftPost: zShiftPost)
    }
}

/// SPACE's glimpse encoder: a (N, 3, 32, 32) glimpse to the z_what posterior and a sample.
public final class SpaceGlimpseEncoder: Module, GlimpseEncoder {
    @StateKey("enc_cnn") var encCnn: Sequential
    @StateKey("enc_what") var encWhat: Linear
    let zWhatDim: Int

    public init(arch: SpaceArch) {
        zWhatDim = arch.zWhatDim
        super.init()
        encCnn = Sequential(
            conv(3, 16, 3, 1, 1), CELU(), gn(4, 16),
            conv(16, 32, 4, 2, 1), CELU(), gn(8, 32),
            conv(32, 32, 3, 1, 1), CELU(), gn(4, 32),
            conv(32, 64, 4, 2, 1), CELU(), gn(8, 64),
            conv(64, 128, 4, 2, 1), CELU(), gn(8, 128),
            conv(128, 256, 4), CELU(), gn(16, 256))
        encWhat = Linear(inputCount: 256, outputCount: arch.zWhatDim * 2)
    }

    public func callAsFunction(_ glimpses: Tensor, noise: NoiseSource) throws -> (Tensor, Normal) {
        let h = try encCnn(glimpses)
        let p = try encWhat(h.flatten(start: 1)).chunk(2, dim: -1)
        let post = try Normal(loc: p[0], scale: p[1].softplus())
        return (try post.rsample(noise: noise, name: "fg.z_what"), post)
    }
}

/// SPACE's glimpse decoder: z_what (N, D) to an RGB glimpse (N, 3, 32, 32) and its alpha (N, 1, 32, 32).
public final class SpaceGlimpseDecoder: Module, GlimpseDecoder {
    public let dec: Sequential
    @StateKey("dec_o") var decO: Conv2d
    @StateKey("dec_alpha") var decAlpha: Conv2d

    public init(arch: SpaceArch) {
        dec = Sequential(
            conv(arch.zWhatDim, 256, 1), CELU(), gn(16, 256),
            conv(256, 128 * 2 * 2, 1), PixelShuffle(2), CELU(), gn(16, 128),
            conv(128, 128, 3, 1, 1), CELU(), gn(16, 128),
            conv(128, 128 * 2 * 2, 1), PixelShuffle(2), CELU(), gn(16, 128),
            conv(128, 128, 3, 1, 1), CELU(), gn(16, 128),
            conv(128, 64 * 2 * 2, 1), PixelShuffle(2), CELU(), gn(8, 64),
            conv(64, 64, 3, 1, 1), CELU(), gn(8, 64),
            conv(64, 32 * 2 * 2, 1), PixelShuffle(2), CELU(), gn(8, 32),
            conv(32, 32, 3, 1, 1), CELU(), gn(8, 32),
            conv(32, 16 * 2 * 2, 1), PixelShuffle(2), CELU(), gn(4, 16),
            conv(16, 16, 3, 1, 1), CELU(), gn(4, 16))
        super.init()
        decO = conv(16, 3, 3, 1, 1)
        decAlpha = conv(16, 1, 3, 1, 1)
    }

    public func callAsFunction(_ zWhat: Tensor) throws -> (Tensor, Tensor) {
        let z = try zWhat.reshape([zWhat.shape[0], -1, 1, 1])
        if ChainFusion.active, decO.stride == decAlpha.stride, decO.padding == decAlpha.padding,
           decO.kernelSize == decAlpha.kernelSize, (decO.bias == nil) == (decAlpha.bias == nil) {
            // The two heads read the same features: one convolution with both heads' filters, fused with
            // the decoder's last CELU + GroupNorm, so that 16 x 32 x 32 map per glimpse is never stored.
            let weight = try Tensor.cat([decO.weight, decAlpha.weight], dim: 0)
            let bias = try decO.bias.map { try Tensor.cat([$0, decAlpha.bias!], dim: 0) }
            let head = ConvolutionSpec(weight: weight, bias: bias, stride: (decO.stride, decO.stride),
                                       padding: (decO.padding, decO.padding), module: self)
            let out = try dec.features(FeatureMap(nchw: z), head: head).nchw()
            let o = decO.outputChannels
            return (try out.narrow(dim: 1, start: 0, length: o).sigmoid(),
                    try out.narrow(dim: 1, start: o, length: decAlpha.outputChannels).sigmoid())
        }
        let h = try dec(z)
        return (try decO(h).sigmoid(), try decAlpha(h).sigmoid())
    }
}
