import CKernels

// The pointwise stage between convolutions, fused (Sources/CKernels/pointwise.c): pixel shuffle,
// activation and normalisation in one pass over blocked feature maps, and the same stage fused with
// the convolution that follows it, so that the stage's output never has to be kept for backward.

/// An activation the fused stage runs.
public enum StageActivation: Equatable, Sendable {
    /// CELU: x > 0 ? x : alpha (e^(x/alpha) - 1).
    case celu(alpha: Float)
    /// ELU: x > 0 ? x : alpha (e^x - 1).
    case elu(alpha: Float)
}

/// A normalisation the fused stage runs, with the layer that owns its parameters and statistics.
public enum StageNorm {
    case group(GroupNorm)
    case batch(BatchNorm2d)

    var weight: Tensor? { switch self { case .group(let g): return g.weight; case .batch(let b): return b.weight } }
    var bias: Tensor? { switch self { case .group(let g): return g.bias; case .batch(let b): return b.bias } }
    var channels: Int { switch self { case .group(let g): return g.channels; case .batch(let b): return b.channels } }
}

/// What runs between two convolutions: y = norm(act(shuffle(z))) or act(norm(shuffle(z))), each part
/// optional. The shuffle is PyTorch's pixel shuffle by `shuffle`; the convolution producing z must
/// then have its output channels permuted by `shuffledChannelOrder` (see `conv2d(... shuffle:)`).
public struct PointwiseStage {
    public var shuffle: Int
    public var activation: StageActivation?
    public var norm: StageNorm?
    public var activationFirst: Bool

    public init(shuffle: Int = 1, activation: StageActivation? = nil, norm: StageNorm? = nil, activationFirst: Bool = true) {
        self.shuffle = shuffle; self.activation = activation; self.norm = norm; self.activationFirst = activationFirst
    }

    /// The parameters the stage trains (the norm's affine weight and bias, where present).
    var parameters: [Tensor] { [norm?.weight, norm?.bias].compactMap { $0 } }

    var summary: String {
        var parts: [String] = []
        if shuffle > 1 { parts.append("shuffle\(shuffle)") }
        let act: String? = activation.map { if case .celu = $0 { return "celu" } else { return "elu" } }
        let nrm: String? = norm.map { if case .group(let g) = $0 { return "gn\(g.groups)" } else { return "bn" } }
        if activationFirst { parts += [act, nrm].compactMap { $0 } } else { parts += [nrm, act].compactMap { $0 } }
        return parts.joined(separator: "+")
    }

    /// The kernel description for input z (blocked, C * r * r channels, H x W).
    func descriptor(_ z: FeatureMap) throws -> sk_pw_desc {
        let r = shuffle
        guard z.format == .blocked16, r >= 1, z.c % (r * r) == 0, (z.c / (r * r)) % 16 == 0 else {
            throw SpaceError.shape(op: "pointwise", message: "stage \(summary) needs blocked input with 16k * \(r * r) channels, got \(z.c) in \(z.format)")
        }
        let c = z.c / (r * r)
        if let norm, norm.channels != c {
            throw SpaceError.shape(op: "pointwise", message: "norm over \(norm.channels) channels for \(c) channels")
        }
        var d = sk_pw_desc()
        d.N = Int64(z.n); d.C = Int64(c); d.H = Int64(z.h); d.W = Int64(z.w); d.r = Int64(r)
        switch activation {
        case .celu(let a): d.act = SK_ACT_CELU; d.alpha = a
        case .elu(let a): d.act = SK_ACT_ELU; d.alpha = a
        case nil: d.act = SK_ACT_NONE; d.alpha = 1
        }
        d.act_first = activationFirst ? 1 : 0
        switch norm {
        case .group(let g): d.norm = SK_NORM_GROUP; d.groups = Int64(g.groups); d.eps = g.eps
        case .batch(let b): d.norm = SK_NORM_BATCH; d.eps = b.eps; d.momentum = b.momentum; d.training = b.training ? 1 : 0
        case nil: d.norm = SK_NORM_NONE; d.eps = 1e-5
        }
        let st = sk_pw_check(&d)
        guard st == SK_OK else { throw SpaceError.argument(op: "pointwise", message: "stage \(summary) rejected (status \(st))") }
        return d
    }
}

/// The statistics of one forward run of a stage: what both its output and its backward need.
final class StageRun {
    var desc: sk_pw_desc
    let stage: PointwiseStage
    /// The stage's input, when the run keeps it (a run whose input is recomputed drops it after forward).
    private(set) var z: FeatureMap?
    let n: Int, zh: Int, zw: Int
    let mean: Storage, rstd: Storage, scale: Storage, shift: Storage
    var outputShape: (n: Int, c: Int, h: Int, w: Int) {
        (n, Int(desc.C), zh * stage.shuffle, zw * stage.shuffle)
    }

    /// Computes the statistics of z (and, for batch norm in training, updates the running statistics).
    init(_ stage: PointwiseStage, _ z: FeatureMap) throws {
        self.stage = stage; self.z = z
        n = z.n; zh = z.h; zw = z.w
        desc = try stage.descriptor(z)
        let nc = z.n * Int(desc.C)
        mean = Storage(count: nc); rstd = Storage(count: nc); scale = Storage(count: nc); shift = Storage(count: nc)
        let needsSums = desc.norm == SK_NORM_GROUP || (desc.norm == SK_NORM_BATCH && desc.training != 0)
        let sum = ScratchBuffer<Double>(count: needsSums ? nc : 0), sumsq = ScratchBuffer<Double>(count: needsSums ? nc : 0)
        if needsSums {
            let st = sk_pw_stats(&desc, sum.pointer, sumsq.pointer, z.tensor.pointer)
            guard st == SK_OK else { throw SpaceError.argument(op: "pointwise", message: "statistics failed (status \(st))") }
        }
        var runningMean: UnsafeMutablePointer<Float>? = nil, runningVar: UnsafeMutablePointer<Float>? = nil
        if case .batch(let bn) = stage.norm {
            runningMean = bn.runningMean.pointer; runningVar = bn.runningVar.pointer
            if bn.training { bn.numBatchesTracked.values[0] += 1 }
        }
        let st = sk_pw_finish(&desc, mean.pointer, rstd.pointer, scale.pointer, shift.pointer,
                              needsSums ? sum.pointer : nil, needsSums ? sumsq.pointer : nil,
                              stage.norm?.weight?.pointer, stage.norm?.bias?.pointer, runningMean, runningVar)
        guard st == SK_OK else { throw SpaceError.argument(op: "pointwise", message: "statistics failed (status \(st))") }
    }

    /// Forgets the input (the statistics stay): the caller recomputes it for backward.
    func dropInput() { z = nil }

    private func input(_ given: UnsafePointer<Float>?) throws -> UnsafePointer<Float> {
        if let given { return given }
        guard let z else { throw SpaceError.message("pointwise: the stage's input was dropped and not given again") }
        return UnsafePointer(z.tensor.pointer)
    }

    /// The stage's output, blocked (N, C/16, H*r, W*r, 16), from z (the kept input unless `from` is given);
    /// in scratch memory when it only feeds a convolution within the same op.
    func output(scratch: Bool = false, from given: UnsafePointer<Float>? = nil) throws -> Storage {
        let (n, c, h, w) = outputShape
        let zp = try input(given)
        let y = scratch ? Storage(scratch: n * c * h * w) : Storage(count: n * c * h * w)
        let st = sk_pw_apply(&desc, y.pointer, zp, scale.pointer, shift.pointer)
        guard st == SK_OK else { throw SpaceError.argument(op: "pointwise", message: "apply failed (status \(st))") }
        return y
    }

    /// Gradients of the stage given dy at its output: dz (z's layout; when `wantInput`) and, where they are
    /// trained, the norm's weight and bias gradients. z is the kept input unless `from` is given. Without
    /// a shuffle, dy and dz have the same layout and dz is written over dy's storage (`reuse`), which
    /// the caller gives up.
    func backward(_ dyStorage: Storage, from given: UnsafePointer<Float>? = nil, wantInput: Bool? = nil, reuse: Bool = false)
        throws -> (dz: Tensor?, dgamma: Tensor?, dbeta: Tensor?) {
        let dy = UnsafePointer(dyStorage.pointer)
        let zp = try input(given)
        let nc = n * Int(desc.C), c = Int(desc.C)
        let zCount = nc * zh * zw * stage.shuffle * stage.shuffle
        let s1 = ScratchBuffer<Double>(count: nc), s2 = ScratchBuffer<Double>(count: nc)
        var st = sk_pw_backward_sums(&desc, s1.pointer, s2.pointer, dy, zp, mean.pointer, rstd.pointer, scale.pointer, shift.pointer)
        guard st == SK_OK else { throw SpaceError.argument(op: "pointwise", message: "backward failed (status \(st))") }
        let wantG = stage.norm?.weight?.requiresGrad ?? false, wantB = stage.norm?.bias?.requiresGrad ?? false
        let dgamma = wantG ? Tensor.zeros([c]) : nil, dbeta = wantB ? Tensor.zeros([c]) : nil
        let k1 = Storage(scratch: nc), k2 = Storage(scratch: nc), k3 = Storage(scratch: nc)
        st = sk_pw_backward_finish(&desc, dgamma?.pointer, dbeta?.pointer, k1.pointer, k2.pointer, k3.pointer, s1.pointer,
                                   s2.pointer, rstd.pointer, stage.norm?.weight?.pointer)
        guard st == SK_OK else { throw SpaceError.argument(op: "pointwise", message: "backward failed (status \(st))") }
        var dz: Tensor? = nil
        if wantInput ?? (z?.tensor.requiresGrad ?? false) {
            // Elementwise in the same layout: writing dz over dy reads each element before writing it.
            let s = reuse && stage.shuffle == 1 && dyStorage.count == zCount ? dyStorage : Storage(count: zCount)
            st = sk_pw_backward_apply(&desc, s.pointer, dy, zp, mean.pointer, rstd.pointer, scale.pointer,
                                      shift.pointer, k1.pointer, k2.pointer, k3.pointer)
            guard st == SK_OK else { throw SpaceError.argument(op: "pointwise", message: "backward failed (status \(st))") }
            dz = Tensor(shape: FeatureMap.physicalShape(.blocked16, n: n, c: Int(desc.C) * stage.shuffle * stage.shuffle, h: zh, w: zw),
                        storage: s)
        }
        return (dz, dgamma, dbeta)
    }

    var sectionDetail: String { "\(n)x\(desc.C)x\(outputShape.h)x\(outputShape.w) \(stage.summary)" }
}

/// The stage applied to z, materialised: y blocked (N, C, H*r, W*r). Differentiable with respect to z and
/// the norm's parameters.
public func pointwise(_ z: FeatureMap, _ stage: PointwiseStage) throws -> FeatureMap {
    let run = try StageRun(stage, z)
    let y = try run.output()
    let (n, c, h, w) = run.outputShape
    let params = stage.parameters
    Profiler.describe(run.sectionDetail, flops: 0)
    let t = Tensor.result(FeatureMap.physicalShape(.blocked16, n: n, c: c, h: h, w: w), y, name: "pointwise",
                          inputs: [z.tensor] + params) { g in
        let (dz, dgamma, dbeta) = try run.backward(g.storage)
        return [dz] + stageParameterGrads(stage, dgamma, dbeta)
    }
    return FeatureMap(tensor: t, format: .blocked16, n: n, c: c, h: h, w: w)
}

/// The gradients of a stage's parameters in the order of `PointwiseStage.parameters`.
private func stageParameterGrads(_ stage: PointwiseStage, _ dgamma: Tensor?, _ dbeta: Tensor?) -> [Tensor?] {
    var out: [Tensor?] = []
    if stage.norm?.weight != nil { out.append(dgamma) }
    if stage.norm?.bias != nil { out.append(dbeta) }
    return out
}

/// conv2d(stage(z)) in one differentiable op: the stage's output exists only while the convolution
/// reads it, in forward and again (recomputed from z) in backward for the weight gradient, so a chain of
/// these keeps one tensor per layer (its input z) instead of three. The convolution's result is in
/// `outFormat`; with `outShuffle` > 1 its output channels are permuted for a following pixel shuffle
/// (see `shuffledChannelOrder`).
public func pointwiseConv2d(_ z: FeatureMap, _ stage: PointwiseStage, weight: Tensor, bias: Tensor?,
                            stride: (Int, Int), padding: (Int, Int), outFormat: MemoryFormat) throws -> FeatureMap {
    let run = try Profiler.section("pointwise", "statistics") { try StageRun(stage, z) }
    let (n, c, h, w) = run.outputShape
    let geo = try ConvGeometry(n: n, c: c, h: h, w: w, weight: weight, bias: bias, stride: stride, padding: padding)
    if outFormat == .blocked16 && geo.o % 16 != 0 {
        throw SpaceError.shape(op: "conv2d", message: "\(geo.o) output channels cannot be blocked by 16")
    }
    let inference = !Tensor.recordsGradient([z.tensor, weight] + stage.parameters + (bias.map { [$0] } ?? []))
    guard let kernel = ConvKernel.choose(geo, src: .blocked16, dst: outFormat, bias: bias != nil, inference: inference) else {
        throw SpaceError.message("conv2d \(geo.text): no kernel can run it on blocked input")
    }
    let detail = kernel.detail
    let out = Storage(count: geo.n * geo.o * geo.ho * geo.wo)
    do {
        let y = try Profiler.section("pointwise", run.sectionDetail) { try run.output(scratch: true) }
        try Profiler.section("conv2d", detail, flops: geo.flops) {
            try kernel.forward(out.pointer, y.pointer, weight.pointer, bias?.pointer)
        }
    }
    let params = stage.parameters
    var inputs = [z.tensor] + params + [weight]
    if let bias { inputs.append(bias) }
    Profiler.describe(detail, flops: 0)
    let shape = FeatureMap.physicalShape(outFormat, n: geo.n, c: geo.o, h: geo.ho, w: geo.wo)
    let result = Tensor.result(shape, out, name: "pointwise_conv2d", inputs: inputs) { g in
        let wantW = weight.requiresGrad, wantB = bias?.requiresGrad ?? false
        var gw: Tensor? = nil, gb: Tensor? = nil
        if wantW || wantB {
            let y = try Profiler.section("pointwise", run.sectionDetail + " (recomputed)") { try run.output(scratch: true) }
            let ws = wantW ? Storage(count: weight.count, repeating: 0) : nil
            let bs = wantB ? Storage(count: geo.o, repeating: 0) : nil
            try Profiler.section("conv2d", detail + " weights", flops: geo.flops) {
                try kernel.backwardWeights(ws?.pointer, bs?.pointer, g.pointer, y.pointer)
            }
            gw = ws.map { Tensor(shape: weight.shape, storage: $0) }
            gb = bs.map { Tensor(shape: [geo.o], storage: $0) }
        }
        var stageGrads: [Tensor?] = [nil] + params.map { _ in nil }
        if z.tensor.requiresGrad || params.contains(where: { $0.requiresGrad }) {
            let dy = Storage(scratch: n * c * h * w)
            try Profiler.section("conv2d", detail + " data", flops: geo.flops) {
                try kernel.backwardData(dy.pointer, g.pointer, weight.pointer)
            }
            let (dz, dgamma, dbeta) = try Profiler.section("pointwise", run.sectionDetail) { try run.backward(dy, reuse: true) }
            stageGrads = [dz] + stageParameterGrads(stage, dgamma, dbeta)
        }
        return stageGrads + [gw] + (bias == nil ? [] : [gb])
    }
    return FeatureMap(tensor: result, format: outFormat, n: geo.n, c: geo.o, h: geo.ho, w: geo.wo)
}

/// conv2d(stage(conv2d(x))) in one differentiable op that keeps only x: the first convolution's output
/// z, usually many times larger than x (the glimpse encoder's 16 x 32 x 32 features of a 3 x 32 x 32
/// glimpse), is recomputed from x in backward instead of being stored through the forward pass. The
/// first convolution's output is blocked, its channels permuted for the stage's shuffle by the caller
/// (`first` holds the permuted weights); the second convolution's result is in `outFormat`.
public func convPointwiseConv2d(_ x: FeatureMap, first: ConvolutionSpec, _ stage: PointwiseStage, second: ConvolutionSpec,
                                outFormat: MemoryFormat) throws -> FeatureMap {
    let geo1 = try ConvGeometry(n: x.n, c: x.c, h: x.h, w: x.w, weight: first.weight, bias: first.bias,
                                stride: first.stride, padding: first.padding)
    guard geo1.o % 16 == 0, let kernel1 = ConvKernel.choose(geo1, src: x.format, dst: .blocked16, bias: first.bias != nil) else {
        throw SpaceError.message("conv2d \(geo1.text): no kernel can run it into blocked maps")
    }
    let zCount = geo1.n * geo1.o * geo1.ho * geo1.wo
    func firstOutput() throws -> Storage {
        let z = Storage(scratch: zCount)
        try Profiler.section("conv2d", kernel1.detail + (GradMode.isEnabled ? "" : " (recomputed)"), flops: geo1.flops) {
            try kernel1.forward(z.pointer, x.tensor.pointer, first.weight.pointer, first.bias?.pointer)
        }
        return z
    }
    let z = try firstOutput()
    let zMap = FeatureMap(tensor: Tensor(shape: FeatureMap.physicalShape(.blocked16, n: geo1.n, c: geo1.o, h: geo1.ho, w: geo1.wo),
                                         storage: z), format: .blocked16, n: geo1.n, c: geo1.o, h: geo1.ho, w: geo1.wo)
    let run = try Profiler.section("pointwise", "statistics") { try StageRun(stage, zMap) }
    let (n, c, h, w) = run.outputShape
    let geo2 = try ConvGeometry(n: n, c: c, h: h, w: w, weight: second.weight, bias: second.bias, stride: second.stride, padding: second.padding)
    if outFormat == .blocked16 && geo2.o % 16 != 0 {
        throw SpaceError.shape(op: "conv2d", message: "\(geo2.o) output channels cannot be blocked by 16")
    }
    guard let kernel2 = ConvKernel.choose(geo2, src: .blocked16, dst: outFormat, bias: second.bias != nil) else {
        throw SpaceError.message("conv2d \(geo2.text): no kernel can run it on blocked input")
    }
    let detail2 = kernel2.detail
    let out = Storage(count: geo2.n * geo2.o * geo2.ho * geo2.wo)
    do {
        let y = try Profiler.section("pointwise", run.sectionDetail) { try run.output(scratch: true) }
        try Profiler.section("conv2d", detail2, flops: geo2.flops) {
            try kernel2.forward(out.pointer, y.pointer, second.weight.pointer, second.bias?.pointer)
        }
    }
    run.dropInput()
    let params = stage.parameters
    var inputs = [x.tensor, first.weight] + (first.bias.map { [$0] } ?? []) + params + [second.weight]
    if let b = second.bias { inputs.append(b) }
    Profiler.describe(detail2, flops: 0)
    let xt = x.tensor
    let shape = FeatureMap.physicalShape(outFormat, n: geo2.n, c: geo2.o, h: geo2.ho, w: geo2.wo)
    let result = Tensor.result(shape, out, name: "conv_pointwise_conv2d", inputs: inputs) { g in
        let z = try firstOutput()
        // The second convolution's weights, from the stage's output recomputed on the recomputed z.
        var gw2: Tensor? = nil, gb2: Tensor? = nil
        if second.weight.requiresGrad || (second.bias?.requiresGrad ?? false) {
            let y = try Profiler.section("pointwise", run.sectionDetail + " (recomputed)") { try run.output(scratch: true, from: z.pointer) }
            let ws = second.weight.requiresGrad ? Storage(count: second.weight.count, repeating: 0) : nil
            let bs = (second.bias?.requiresGrad ?? false) ? Storage(count: geo2.o, repeating: 0) : nil
            try Profiler.section("conv2d", detail2 + " weights", flops: geo2.flops) {
                try kernel2.backwardWeights(ws?.pointer, bs?.pointer, g.pointer, y.pointer)
            }
            gw2 = ws.map { Tensor(shape: second.weight.shape, storage: $0) }
            gb2 = bs.map { Tensor(shape: [geo2.o], storage: $0) }
        }
        // Through the stage to z, then the first convolution's gradients.
        let wantFirst = xt.requiresGrad || first.weight.requiresGrad || (first.bias?.requiresGrad ?? false)
        var stageGrads: [Tensor?] = params.map { _ in nil }
        var gx: Tensor? = nil, gw1: Tensor? = nil, gb1: Tensor? = nil
        if wantFirst || params.contains(where: { $0.requiresGrad }) {
            let dy = Storage(scratch: n * c * h * w)
            try Profiler.section("conv2d", detail2 + " data", flops: geo2.flops) {
                try kernel2.backwardData(dy.pointer, g.pointer, second.weight.pointer)
            }
            let (dz, dgamma, dbeta) = try Profiler.section("pointwise", run.sectionDetail) {
                try run.backward(dy, from: z.pointer, wantInput: wantFirst, reuse: true)
            }
            stageGrads = stageParameterGrads(stage, dgamma, dbeta)
            if let dz {
                if first.weight.requiresGrad || (first.bias?.requiresGrad ?? false) {
                    let ws = first.weight.requiresGrad ? Storage(count: first.weight.count, repeating: 0) : nil
                    let bs = (first.bias?.requiresGrad ?? false) ? Storage(count: geo1.o, repeating: 0) : nil
                    try Profiler.section("conv2d", kernel1.detail + " weights", flops: geo1.flops) {
                        try kernel1.backwardWeights(ws?.pointer, bs?.pointer, dz.pointer, xt.pointer)
                    }
                    gw1 = ws.map { Tensor(shape: first.weight.shape, storage: $0) }
                    gb1 = bs.map { Tensor(shape: [geo1.o], storage: $0) }
                }
                if xt.requiresGrad {
                    let s = Storage(count: xt.count)
                    try Profiler.section("conv2d", kernel1.detail + " data", flops: geo1.flops) {
                        try kernel1.backwardData(s.pointer, dz.pointer, first.weight.pointer)
                    }
                    gx = Tensor(shape: xt.shape, storage: s)
                }
            }
        }
        return [gx, gw1] + (first.bias == nil ? [] : [gb1]) + stageGrads + [gw2] + (second.bias == nil ? [] : [gb2])
    }
    return FeatureMap(tensor: result, format: outFormat, n: geo2.n, c: geo2.o, h: geo2.ho, w: geo2.wo)
}

/// The order of a convolution's output channels that makes a following pixel shuffle by r a
/// permutation of whole channel blocks: new channel s * C + c is PyTorch's channel c * r * r + s.
public func shuffledChannelOrder(channels: Int, shuffle r: Int) -> [Int] {
    let c = channels / (r * r)
    return (0..<channels).map { k in (k % c) * r * r + k / c }
}
