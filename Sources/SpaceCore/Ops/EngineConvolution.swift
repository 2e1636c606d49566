import CKernels
import Foundation

// conv2d between feature maps, differentiable, on whichever kernel suits the shape:
// - oneDNN (Sources/CKernels/dnn.c): direct or Winograd, the general case;
// - a matrix product when the kernel covers the whole unpadded map (a 1x1 convolution of 1x1 maps, the
//   glimpse encoder's 4x4 convolution of 4x4 maps): y (N, O) = x (N, C*H*W) @ w^T;
// - the narrow kernels (Sources/CKernels/narrow_conv.c) for a few output channels from blocked maps,
//   and for the input gradient of a convolution from a few channels.

/// The sizes of one convolution, checked: what every kernel needs.
struct ConvGeometry {
    let n: Int, c: Int, h: Int, w: Int, o: Int, kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int
    var ho: Int { (h + 2 * ph - kh) / sh + 1 }
    var wo: Int { (w + 2 * pw - kw) / sw + 1 }
    var flops: Double { 2.0 * Double(n * o * c * kh * kw * ho * wo) }
    var text: String { "\(n)x\(c)x\(h)x\(w) -> \(o) k\(kh)x\(kw) s\(sh) p\(ph)" }

    init(n: Int, c: Int, h: Int, w: Int, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int)) throws {
        let (sh, sw) = stride, (ph, pw) = padding
        func describe() -> String {
            "input \(shapeString([n, c, h, w])), weight \(shapeString(weight.shape))"
                + (bias.map { ", bias \(shapeString($0.shape))" } ?? "") + ", stride (\(sh), \(sw)), padding (\(ph), \(pw))"
        }
        guard sh >= 1, sw >= 1, ph >= 0, pw >= 0 else {
            throw SpaceError.argument(op: "conv2d", message: "stride must be >= 1 and padding >= 0: \(describe())")
        }
        guard weight.rank == 4 else {
            throw SpaceError.shape(op: "conv2d", message: "expects weight (O, C, kh, kw): \(describe())")
        }
        guard weight.shape[1] == c else {
            throw SpaceError.shape(op: "conv2d", message: "input has \(c) channels but weight expects \(weight.shape[1]): \(describe())")
        }
        let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
        guard c >= 1, o >= 1, kh >= 1, kw >= 1 else {
            throw SpaceError.shape(op: "conv2d", message: "empty channel or kernel dimension: \(describe())")
        }
        if let bias, bias.shape != [o] { throw SpaceError.shape(op: "conv2d", message: "bias must be [\(o)]: \(describe())") }
        guard h >= 1, w >= 1, h + 2 * ph >= kh, w + 2 * pw >= kw else {
            throw SpaceError.shape(op: "conv2d", message: "padded input \(h + 2 * ph)x\(w + 2 * pw) smaller than kernel \(kh)x\(kw): \(describe())")
        }
        self.n = n; self.c = c; self.h = h; self.w = w; self.o = o; self.kh = kh; self.kw = kw
        self.sh = sh; self.sw = sw; self.ph = ph; self.pw = pw
    }

    /// oneDNN's cached convolution for these sizes and formats, or nil if it has none.
    /// The engine's convolution for this geometry; `inference` for a forward pass that records no
    /// gradient (it may then run a forward-only algorithm with its weights transformed once and kept).
    func engineConvolution(src: MemoryFormat, dst: MemoryFormat, bias: Bool, inference: Bool = false) -> OpaquePointer? {
        guard n >= 1 else { return nil }
        var status: Int32 = 0
        let get = inference ? sk_dnn_conv_get_inference : sk_dnn_conv_get
        return get(Int64(n), Int64(c), Int64(h), Int64(w), Int64(o), Int64(kh), Int64(kw), Int64(sh), Int64(sw),
                   Int64(ph), Int64(pw), src.rawValue, dst.rawValue, bias ? 1 : 0, SK_DNN_AUTO, &status)
    }

    var isDense: Bool { kh == h && kw == w && ph == 0 && pw == 0 }
    var isStrideOne: Bool { sh == 1 && sw == 1 }
    /// The padding leaves every output position some input: what the narrow kernels require.
    var paddingInsideKernel: Bool { ph < kh && pw < kw }
}

/// The kernel one convolution runs on, with its three passes on raw memory. Forward and backward data
/// write fresh buffers; backward weights adds into the gradients it is given.
struct ConvKernel {
    enum Kind { case engine(OpaquePointer), dense, narrow, narrowInputGradient(OpaquePointer) }
    let kind: Kind
    let geo: ConvGeometry
    let src: MemoryFormat, dst: MemoryFormat

    /// Picks the kernel for a convolution from `src` to `dst` formats; nil if none can run it.
    /// `inference`: the forward pass will record no gradient (no backward pass will be asked for).
    static func choose(_ geo: ConvGeometry, src: MemoryFormat, dst: MemoryFormat, bias: Bool, inference: Bool = false) -> ConvKernel? {
        if geo.isDense { return ConvKernel(kind: .dense, geo: geo, src: src, dst: dst) }
        if src == .blocked16 && dst == .nchw && geo.o <= Int(SK_NARROW_MAX_O) && geo.isStrideOne && geo.paddingInsideKernel {
            return ConvKernel(kind: .narrow, geo: geo, src: src, dst: dst)
        }
        guard let conv = geo.engineConvolution(src: src, dst: dst, bias: bias, inference: inference) else { return nil }
        if src == .nchw && dst == .blocked16 && geo.c <= Int(SK_NARROW_MAX_O) && geo.isStrideOne && geo.paddingInsideKernel {
            return ConvKernel(kind: .narrowInputGradient(conv), geo: geo, src: src, dst: dst)
        }
        return ConvKernel(kind: .engine(conv), geo: geo, src: src, dst: dst)
    }

    var label: String {
        switch kind {
        case .engine(let c), .narrowInputGradient(let c):
            guard sk_dnn_conv_algorithm(c) == SK_DNN_WINOGRAD else { return "direct" }
            return sk_dnn_conv_is_inference(c) != 0 ? "winograd-inference" : "winograd"
        case .dense: return "dense"
        case .narrow: return "narrow"
        }
    }

    var detail: String { "\(geo.text) [\(label) \(src)->\(dst)]" }

    /// The weights as a (O, C*H*W) matrix in the order `src` stores one image (dense kernel).
    private func denseWeights(_ w: UnsafePointer<Float>) throws -> Tensor {
        let (o, c, h, wd) = (geo.o, geo.c, geo.h, geo.w)
        let t = try Tensor([Float](UnsafeBufferPointer(start: w, count: o * c * h * wd)), shape: [o, c, h, wd])
        if h * wd == 1 { return t }
        return try Tensor.noGrad {
            switch src {
            case .nchw: return t
            case .nhwc: return try t.permute(0, 2, 3, 1)
            case .blocked16: return try t.reshape([o, c / 16, 16, h, wd]).permute(0, 1, 3, 4, 2)
            }
        }
    }

    /// The inverse of denseWeights' permutation, for the weight gradient.
    private func denseGradient(_ gd: Tensor) throws -> Tensor {
        let (o, c, h, wd) = (geo.o, geo.c, geo.h, geo.w)
        if h * wd == 1 { return gd }
        return try Tensor.noGrad {
            switch src {
            case .nchw: return gd
            case .nhwc: return try gd.reshape([o, h, wd, c]).permute(0, 3, 1, 2)
            case .blocked16: return try gd.reshape([o, c / 16, h, wd, 16]).permute(0, 1, 4, 2, 3)
            }
        }
    }

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                 _ b: UnsafePointer<Float>?) throws {
        let g = geo
        switch kind {
        case .engine(let conv), .narrowInputGradient(let conv):
            let st = sk_dnn_conv_forward(conv, y, x, w, b)
            guard st == SK_OK else { throw dnnError("conv2d \(g.text)", st) }
        case .dense:
            let k = g.c * g.h * g.w
            if let b { for r in 0..<g.n { (y + r * g.o).update(from: b, count: g.o) } }
            let wd = try denseWeights(w)
            sk_matmul(y, x, wd.pointer, 1, Int64(g.n), Int64(k), Int64(g.o), 0, 1, 1, b == nil ? 0 : 1, 0, 0, 0)
        case .narrow:
            let st = sk_narrow_conv_forward(y, x, w, b, Int64(g.n), Int64(g.c), Int64(g.h), Int64(g.w), Int64(g.o),
                                            Int64(g.kh), Int64(g.kw), Int64(g.ph), Int64(g.pw))
            guard st == SK_OK else { throw SpaceError.shape(op: "conv2d", message: "narrow kernel rejected \(g.text) (status \(st))") }
        }
    }

    /// dL/dx given gy, written into gx (src's format).
    func backwardData(_ gx: UnsafeMutablePointer<Float>, _ gy: UnsafePointer<Float>, _ w: UnsafePointer<Float>) throws {
        let g = geo
        switch kind {
        case .engine(let conv):
            let st = sk_dnn_conv_backward_data(conv, gx, gy, w)
            guard st == SK_OK else { throw dnnError("conv2d backward data \(g.text)", st) }
        case .dense:
            let wd = try denseWeights(w)
            sk_matmul(gx, gy, wd.pointer, 1, Int64(g.n), Int64(g.o), Int64(g.c * g.h * g.w), 0, 0, 1, 0, 0, 0, 0)
        case .narrow:
            let st = sk_narrow_conv_backward(gx, nil, nil, gy, nil, w, Int64(g.n), Int64(g.c), Int64(g.h), Int64(g.w),
                                             Int64(g.o), Int64(g.kh), Int64(g.kw), Int64(g.ph), Int64(g.pw))
            guard st == SK_OK else { throw SpaceError.shape(op: "conv2d", message: "narrow kernel rejected \(g.text) (status \(st))") }
        case .narrowInputGradient:
            // dx = conv(gy, w transposed and flipped) with padding k - 1 - p: a narrow convolution from the
            // O blocked output channels to the C input channels.
            var wt = [Float](repeating: 0, count: g.c * g.o * g.kh * g.kw)
            for o in 0..<g.o {
                for c in 0..<g.c {
                    for i in 0..<g.kh {
                        for j in 0..<g.kw {
                            wt[((c * g.o + o) * g.kh + (g.kh - 1 - i)) * g.kw + (g.kw - 1 - j)] = w[((o * g.c + c) * g.kh + i) * g.kw + j]
                        }
                    }
                }
            }
            let st = sk_narrow_conv_forward(gx, gy, wt, nil, Int64(g.n), Int64(g.o), Int64(g.ho), Int64(g.wo), Int64(g.c),
                                            Int64(g.kh), Int64(g.kw), Int64(g.kh - 1 - g.ph), Int64(g.kw - 1 - g.pw))
            guard st == SK_OK else { throw SpaceError.shape(op: "conv2d", message: "narrow kernel rejected the input gradient of \(g.text) (status \(st))") }
        }
    }

    /// Adds dL/dw and dL/db given gy and the forward input x.
    func backwardWeights(_ gw: UnsafeMutablePointer<Float>?, _ gb: UnsafeMutablePointer<Float>?,
                         _ gy: UnsafePointer<Float>, _ x: UnsafePointer<Float>) throws {
        let g = geo
        switch kind {
        case .engine(let conv), .narrowInputGradient(let conv):
            let st = sk_dnn_conv_backward_weights(conv, gw, gb, gy, x)
            guard st == SK_OK else { throw dnnError("conv2d backward weights \(g.text)", st) }
        case .dense:
            let k = g.c * g.h * g.w
            if let gw {
                let gd = Tensor.zeros([g.o, k])
                sk_matmul(gd.pointer, gy, x, 1, Int64(g.o), Int64(g.n), Int64(k), 1, 0, 1, 0, 0, 0, 0)
                let ordered = try denseGradient(gd)
                sk_accumulate(gw, ordered.pointer, Int64(ordered.count))
            }
            if let gb {
                let s = Storage(count: g.o)
                sk_sum_dim_forward(s.pointer, gy, 1, Int64(g.n), Int64(g.o))
                for o in 0..<g.o { gb[o] += s.pointer[o] }
            }
        case .narrow:
            let st = sk_narrow_conv_backward(nil, gw, gb, gy, x, nil, Int64(g.n), Int64(g.c), Int64(g.h), Int64(g.w),
                                             Int64(g.o), Int64(g.kh), Int64(g.kw), Int64(g.ph), Int64(g.pw))
            guard st == SK_OK else { throw SpaceError.shape(op: "conv2d", message: "narrow kernel rejected \(g.text) (status \(st))") }
        }
    }
}

/// conv2d (cross-correlation, groups 1, zero padding) of a batch of feature maps, the result in
/// `outFormat`. Returns nil when no kernel here can run this description (the caller then takes the
/// im2col engine); throws for invalid sizes or a failed run.
///
/// Gradients: the input's through the kernel's backward-data pass, the weight's and bias's through its
/// backward-weights pass, each only when needed.
public func conv2d(_ x: FeatureMap, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                   outFormat: MemoryFormat) throws -> FeatureMap? {
    let geo = try ConvGeometry(n: x.n, c: x.c, h: x.h, w: x.w, weight: weight, bias: bias, stride: stride, padding: padding)
    if outFormat == .blocked16 && geo.o % 16 != 0 {
        throw SpaceError.shape(op: "conv2d", message: "\(geo.o) output channels cannot be blocked by 16")
    }
    let inference = !Tensor.recordsGradient([x.tensor, weight] + (bias.map { [$0] } ?? []))
    guard geo.n >= 1, let kernel = ConvKernel.choose(geo, src: x.format, dst: outFormat, bias: bias != nil, inference: inference) else { return nil }
    let out = Storage(count: geo.n * geo.o * geo.ho * geo.wo)
    try kernel.forward(out.pointer, x.tensor.pointer, weight.pointer, bias?.pointer)
    let detail = kernel.detail
    Profiler.describe(detail, flops: geo.flops, backwardFlops: 0)
    let xt = x.tensor, xShape = x.tensor.shape
    let inputs = bias.map { [xt, weight, $0] } ?? [xt, weight]
    let shape = FeatureMap.physicalShape(outFormat, n: geo.n, c: geo.o, h: geo.ho, w: geo.wo)
    let y = Tensor.result(shape, out, name: "conv2d", inputs: inputs) { g in
        var gx: Tensor? = nil
        if xt.requiresGrad {
            let s = Storage(count: xt.count)
            try Profiler.section("conv2d", detail + " data", flops: geo.flops) { try kernel.backwardData(s.pointer, g.pointer, weight.pointer) }
            gx = Tensor(shape: xShape, storage: s)
        }
        let wantW = weight.requiresGrad, wantB = bias?.requiresGrad ?? false
        var gw: Tensor? = nil, gb: Tensor? = nil
        if wantW || wantB {
            let ws = wantW ? Storage(count: weight.count, repeating: 0) : nil
            let bs = wantB ? Storage(count: geo.o, repeating: 0) : nil
            try Profiler.section("conv2d", detail + " weights", flops: geo.flops) {
                try kernel.backwardWeights(ws?.pointer, bs?.pointer, g.pointer, xt.pointer)
            }
            gw = ws.map { Tensor(shape: weight.shape, storage: $0) }
            gb = bs.map { Tensor(shape: [geo.o], storage: $0) }
        }
        return bias == nil ? [gx, gw] : [gx, gw, gb]
    }
    return FeatureMap(tensor: y, format: outFormat, n: geo.n, c: geo.o, h: geo.ho, w: geo.wo)
}
