import CKernels
import Foundation

// conv2d between feature maps on oneDNN (Sources/CKernels/dnn.c), differentiable.

/// The sizes of one convolution, checked: what both engines need.
struct ConvGeometry {
    let n: Int, c: Int, h: Int, w: Int, o: Int, kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int
    var ho: Int { (h + 2 * ph - kh) / sh + 1 }
    var wo: Int { (w + 2 * pw - kw) / sw + 1 }
    var flops: Double { 2.0 * Double(n * o * c * kh * kw * ho * wo) }
    var text: String { "\(n)x\(c)x\(h)x\(w) -> \(o) k\(kh)x\(kw) s\(sh) p\(ph)" }

    init(n: Int, c: Int, h: Int, w: Int, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int)) throws {
        let (sh, sw) = stride, (ph, pw) = padding
        func describe() -> String {
            "input (\(n), \(c), \(h), \(w)), weight \(shapeString(weight.shape))"
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
    func engineConvolution(src: MemoryFormat, dst: MemoryFormat, bias: Bool) -> OpaquePointer? {
        guard n >= 1 else { return nil }
        var status: Int32 = 0
        return sk_dnn_conv_get(Int64(n), Int64(c), Int64(h), Int64(w), Int64(o), Int64(kh), Int64(kw), Int64(sh), Int64(sw),
                               Int64(ph), Int64(pw), src.rawValue, dst.rawValue, bias ? 1 : 0, SK_DNN_AUTO, &status)
    }
}

/// conv2d (cross-correlation, groups 1, zero padding) of a batch of feature maps on oneDNN, the result in
/// `outFormat`. Returns nil when oneDNN has no implementation for this description (the caller then
/// takes the im2col engine); throws for invalid sizes or a failed run.
///
/// Gradients: the input's through oneDNN's backward-data pass, the weight's and bias's through its
/// backward-weights pass, each only when needed.
public func conv2d(_ x: FeatureMap, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                   outFormat: MemoryFormat) throws -> FeatureMap? {
    let geo = try ConvGeometry(n: x.n, c: x.c, h: x.h, w: x.w, weight: weight, bias: bias, stride: stride, padding: padding)
    if outFormat == .blocked16 && geo.o % 16 != 0 {
        throw SpaceError.shape(op: "conv2d", message: "\(geo.o) output channels cannot be blocked by 16")
    }
    guard let conv = geo.engineConvolution(src: x.format, dst: outFormat, bias: bias != nil) else { return nil }
    let (ho, wo) = (geo.ho, geo.wo)
    let out = Storage(count: geo.n * geo.o * ho * wo)
    let status = sk_dnn_conv_forward(conv, out.pointer, x.tensor.pointer, weight.pointer, bias?.pointer)
    guard status == SK_OK else { throw dnnError("conv2d \(geo.text)", status) }
    let wino = sk_dnn_conv_algorithm(conv) == SK_DNN_WINOGRAD
    let detail = "\(geo.text) [\(wino ? "winograd" : "direct") \(x.format)->\(outFormat)]"
    Profiler.describe(detail, flops: geo.flops, backwardFlops: 0)
    let xt = x.tensor, xShape = x.tensor.shape
    let inputs = bias.map { [xt, weight, $0] } ?? [xt, weight]
    let shape = FeatureMap.physicalShape(outFormat, n: geo.n, c: geo.o, h: ho, w: wo)
    let y = Tensor.result(shape, out, name: "conv2d", inputs: inputs) { g in
        var gx: Tensor? = nil
        if xt.requiresGrad {
            let s = Storage(count: xt.count)
            try Profiler.section("conv2d", detail + " data", flops: geo.flops) {
                let st = sk_dnn_conv_backward_data(conv, s.pointer, g.pointer, weight.pointer)
                guard st == SK_OK else { throw dnnError("conv2d backward data \(geo.text)", st) }
            }
            gx = Tensor(shape: xShape, storage: s)
        }
        let wantW = weight.requiresGrad, wantB = bias?.requiresGrad ?? false
        var gw: Tensor? = nil, gb: Tensor? = nil
        if wantW || wantB {
            let ws = wantW ? Storage(count: weight.count, repeating: 0) : nil
            let bs = wantB ? Storage(count: geo.o, repeating: 0) : nil
            try Profiler.section("conv2d", detail + " weights", flops: geo.flops) {
                let st = sk_dnn_conv_backward_weights(conv, ws?.pointer, bs?.pointer, g.pointer, xt.pointer)
                guard st == SK_OK else { throw dnnError("conv2d backward weights \(geo.text)", st) }
            }
            gw = ws.map { Tensor(shape: weight.shape, storage: $0) }
            gb = bs.map { Tensor(shape: [geo.o], storage: $0) }
        }
        return bias == nil ? [gx, gw] : [gx, gw, gb]
    }
    return FeatureMap(tensor: y, format: outFormat, n: geo.n, c: geo.o, h: ho, w: wo)
}
