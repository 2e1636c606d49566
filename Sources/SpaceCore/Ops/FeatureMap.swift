import CKernels

// Activations in the memory formats the convolution engine (oneDNN) runs fastest on, and the
// differentiable moves between formats.

/// How the values of an (N, C, H, W) batch of feature maps lie in memory.
public enum MemoryFormat: Int32, Sendable, CustomStringConvertible {
    /// Row-major N, C, H, W: PyTorch's layout, what every op outside the convolution chains expects.
    case nchw = 0
    /// Row-major N, H, W, C.
    case nhwc = 1
    /// N, C/16, H, W, 16: channels in blocks of 16 (oneDNN's nChw16c); needs C % 16 == 0. One
    /// pixel's 16 channels are one AVX-512 vector, and oneDNN's direct and Winograd kernels read it
    /// without reordering.
    case blocked16 = 2

    /// The format the engine keeps C-channel activations in: blocked when C is a multiple of 16.
    public static func preferred(channels: Int) -> MemoryFormat { channels % 16 == 0 ? .blocked16 : .nchw }

    public var description: String {
        switch self {
        case .nchw: return "nchw"
        case .nhwc: return "nhwc"
        case .blocked16: return "nChw16c"
        }
    }
}

/// A batch of feature maps of logical size (N, C, H, W) stored in `format`. The tensor's shape is
/// the physical one ((N, C/16, H, W, 16) when blocked), so an op that does not know the format cannot
/// mistake it for NCHW without a shape error.
public struct FeatureMap {
    public let tensor: Tensor
    public let format: MemoryFormat
    public let n: Int, c: Int, h: Int, w: Int

    /// Wraps an NCHW tensor.
    public init(nchw t: Tensor) throws {
        guard t.rank == 4 else { throw SpaceError.shape(op: "FeatureMap", message: "expects (N, C, H, W), got \(shapeString(t.shape))") }
        self.init(tensor: t, format: .nchw, n: t.shape[0], c: t.shape[1], h: t.shape[2], w: t.shape[3])
    }

    /// Wraps a tensor already in `format` with logical size (n, c, h, w); checks its physical shape.
    public init(tensor: Tensor, format: MemoryFormat, n: Int, c: Int, h: Int, w: Int) {
        precondition(tensor.shape == FeatureMap.physicalShape(format, n: n, c: c, h: h, w: w),
                     "FeatureMap: tensor \(shapeString(tensor.shape)) is not (\(n), \(c), \(h), \(w)) in \(format)")
        self.tensor = tensor; self.format = format
        self.n = n; self.c = c; self.h = h; self.w = w
    }

    public static func physicalShape(_ format: MemoryFormat, n: Int, c: Int, h: Int, w: Int) -> [Int] {
        switch format {
        case .nchw: return [n, c, h, w]
        case .nhwc: return [n, h, w, c]
        case .blocked16: return [n, c / 16, h, w, 16]
        }
    }

    /// The logical size (N, C, H, W).
    public var logicalShape: [Int] { [n, c, h, w] }

    /// The same values in `format` (differentiable; no copy when already there).
    public func to(_ target: MemoryFormat) throws -> FeatureMap {
        if target == format { return self }
        if target == .blocked16 && c % 16 != 0 {
            throw SpaceError.shape(op: "reorder", message: "\(c) channels cannot be blocked by 16")
        }
        // One pixel or one channel: NCHW, NHWC and blocked16 (C == 16) may coincide in memory.
        if FeatureMap.sameMemory(format, target, c: c, h: h, w: w) {
            let t = try tensor.reshape(FeatureMap.physicalShape(target, n: n, c: c, h: h, w: w))
            return FeatureMap(tensor: t, format: target, n: n, c: c, h: h, w: w)
        }
        let (src, dims) = (format, (n, c, h, w))
        let out = Storage(count: tensor.count)
        let status = sk_dnn_reorder(out.pointer, target.rawValue, tensor.pointer, src.rawValue,
                                    Int64(dims.0), Int64(dims.1), Int64(dims.2), Int64(dims.3))
        guard status == SK_OK else { throw dnnError("reorder \(format) -> \(target) of \(logicalShape)", status) }
        let shape = FeatureMap.physicalShape(target, n: n, c: c, h: h, w: w)
        let inShape = tensor.shape
        Profiler.describe("\(n)x\(c)x\(h)x\(w) \(format) -> \(target)", flops: 0)
        let t = Tensor.result(shape, out, name: "reorder", inputs: [tensor]) { g in
            let gx = Storage(count: g.count)
            let st = sk_dnn_reorder(gx.pointer, src.rawValue, g.pointer, target.rawValue,
                                    Int64(dims.0), Int64(dims.1), Int64(dims.2), Int64(dims.3))
            guard st == SK_OK else { throw dnnError("reorder backward", st) }
            return [Tensor(shape: inShape, storage: gx)]
        }
        return FeatureMap(tensor: t, format: target, n: n, c: c, h: h, w: w)
    }

    /// The values as an NCHW tensor.
    public func nchw() throws -> Tensor { try to(.nchw).tensor }

    /// Whether two formats of this size lay values out identically.
    static func sameMemory(_ a: MemoryFormat, _ b: MemoryFormat, c: Int, h: Int, w: Int) -> Bool {
        if a == b { return true }
        let spatial = h * w
        func order(_ f: MemoryFormat) -> Int {  // 0: channel-major, 1: channel-minor
            switch f {
            case .nchw: return spatial == 1 ? 1 : (c == 1 ? 1 : 0)
            case .nhwc: return 1
            case .blocked16: return c == 16 || spatial == 1 ? 1 : 2
            }
        }
        let oa = order(a), ob = order(b)
        return oa == ob && oa != 2
    }
}

/// A thrown error for a failed engine call, with oneDNN's own description.
func dnnError(_ what: String, _ status: Int32) -> SpaceError {
    let detail = String(cString: sk_dnn_last_error())
    return SpaceError.message("\(what): engine status \(status)\(detail.isEmpty ? "" : " (\(detail))")")
}
