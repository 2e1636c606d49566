import CKernels
import Foundation

// 2-D convolution (torch.nn.functional.conv2d with groups=1, dilation 1, zero padding) on the
// im2col + OpenBLAS sgemm kernels in Sources/CKernels/conv.c.

/// conv2d with a stride and padding shared by both spatial dimensions.
/// x: (N, C, H, W), weight: (O, C, kh, kw), bias: (O) or nil; returns (N, O, Ho, Wo) with
/// Ho = (H + 2*padding - kh) / stride + 1 and Wo likewise.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) throws -> Tensor {
    try conv2d(x, weight: weight, bias: bias, stride: (stride, stride), padding: (padding, padding))
}

/// Which implementation `conv2d` runs on.
public enum ConvolutionEngine: Sendable {
    /// oneDNN's JIT kernels (direct or Winograd), the default.
    case onednn
    /// im2col + OpenBLAS sgemm (Sources/CKernels/conv.c): the engine before oneDNN, kept as the
    /// fallback for descriptions oneDNN cannot run.
    case im2col

    /// The engine `conv2d` uses; a process-wide setting (tests and benchmarks switch it).
    nonisolated(unsafe) public static var current: ConvolutionEngine = .onednn

    /// Runs `body` with `engine` as the current engine, then restores the previous one.
    public static func with<T>(_ engine: ConvolutionEngine, _ body: () throws -> T) rethrows -> T {
        let previous = current
        current = engine
        defer { current = previous }
        return try body()
    }
}

/// conv2d with per-dimension stride (sh, sw) and padding (ph, pw).
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int)) throws -> Tensor {
    if ConvolutionEngine.current == .onednn, x.rank == 4,
       let y = try conv2d(FeatureMap(nchw: x), weight: weight, bias: bias, stride: stride, padding: padding, outFormat: .nchw) {
        return y.tensor
    }
    return try conv2dIm2col(x, weight: weight, bias: bias, stride: stride, padding: padding)
}

/// conv2d on the im2col + sgemm kernels of Sources/CKernels/conv.c.
public func conv2dIm2col(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int)) throws -> Tensor {
    let (sh, sw) = stride, (ph, pw) = padding
    func describe() -> String {
        "input \(shapeString(x.shape)), weight \(shapeString(weight.shape))"
            + (bias.map { ", bias \(shapeString($0.shape))" } ?? "")
            + ", stride (\(sh), \(sw)), padding (\(ph), \(pw))"
    }
    guard sh >= 1, sw >= 1, ph >= 0, pw >= 0 else {
        throw SpaceError.argument(op: "conv2d", message: "stride must be >= 1 and padding >= 0: \(describe())")
    }
    guard x.rank == 4, weight.rank == 4 else {
        throw SpaceError.shape(op: "conv2d", message: "expects input (N, C, H, W) and weight (O, C, kh, kw): \(describe())")
    }
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
    guard weight.shape[1] == c else {
        throw SpaceError.shape(op: "conv2d", message: "input has \(c) channels but weight expects \(weight.shape[1]): \(describe())")
    }
    guard c >= 1, o >= 1, kh >= 1, kw >= 1 else {
        throw SpaceError.shape(op: "conv2d", message: "empty channel or kernel dimension: \(describe())")
    }
    if let bias, bias.shape != [o] {
        throw SpaceError.shape(op: "conv2d", message: "bias must be [\(o)]: \(describe())")
    }
    guard h >= 1, w >= 1, h + 2 * ph >= kh, w + 2 * pw >= kw else {
        throw SpaceError.shape(op: "conv2d", message: "padded input \(h + 2 * ph)x\(w + 2 * pw) smaller than kernel \(kh)x\(kw): \(describe())")
    }
    let ho = (h + 2 * ph - kh) / sh + 1, wo = (w + 2 * pw - kw) / sw + 1
    let sizes = (Int64(n), Int64(c), Int64(h), Int64(w), Int64(o), Int64(kh), Int64(kw),
                 Int64(sh), Int64(sw), Int64(ph), Int64(pw))
    let workCount = Int(sk_conv2d_workspace(sizes.0, sizes.1, sizes.2, sizes.3, sizes.4, sizes.5, sizes.6,
                                            sizes.7, sizes.8, sizes.9, sizes.10, 0))
    guard workCount >= 0 else { throw SpaceError.shape(op: "conv2d", message: "sizes out of range: \(describe())") }

    let out = Storage(count: n * o * ho * wo)
    let status = ConvWorkspace.shared.with(floats: workCount) { work in
        sk_conv2d_forward(out.pointer, work, x.pointer, weight.pointer, bias?.pointer,
                          sizes.0, sizes.1, sizes.2, sizes.3, sizes.4, sizes.5, sizes.6,
                          sizes.7, sizes.8, sizes.9, sizes.10, 0)
    }
    guard status == SK_OK else {
        throw SpaceError.shape(op: "conv2d", message: "kernel rejected sizes (status \(status)): \(describe())")
    }
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    let flops = 2.0 * Double(n * o * c * kh * kw * ho * wo)
    Profiler.describe("\(n)x\(c)x\(h)x\(w) -> \(o) k\(kh)x\(kw) s\(sh) p\(ph) [im2col]", flops: flops,
                      backwardFlops: flops * Double((x.requiresGrad ? 1 : 0) + (weight.requiresGrad ? 1 : 0)))
    return Tensor.result([n, o, ho, wo], out, name: "conv2d", inputs: inputs) { g in
        let gx = x.requiresGrad ? Storage(count: x.count, repeating: 0) : nil
        let gw = weight.requiresGrad ? Storage(count: weight.count, repeating: 0) : nil
        let gb = (bias?.requiresGrad ?? false) ? Storage(count: o, repeating: 0) : nil
        let st = ConvWorkspace.shared.with(floats: gx == nil && gw == nil ? 0 : workCount) { work in
            sk_conv2d_backward(gx?.pointer, gw?.pointer, gb?.pointer, work, g.pointer, x.pointer, weight.pointer,
                               sizes.0, sizes.1, sizes.2, sizes.3, sizes.4, sizes.5, sizes.6,
                               sizes.7, sizes.8, sizes.9, sizes.10, 0)
        }
        guard st == SK_OK else {
            throw SpaceError.shape(op: "conv2d", message: "backward kernel rejected sizes (status \(st)): \(describe())")
        }
        let grads: [Tensor?] = [gx.map { Tensor(shape: x.shape, storage: $0) },
                                gw.map { Tensor(shape: weight.shape, storage: $0) }]
        return bias == nil ? grads : grads + [gb.map { Tensor(shape: [o], storage: $0) }]
    }
}

/// Scratch memory for the convolution kernels (their im2col matrices), reused across calls.
///
/// Buffers are 2 MB aligned and advised for transparent huge pages before first touch: im2col and
/// sgemm's operand packing walk them with strides of whole rows, and with 4 KB pages that costs a TLB
/// miss per row (huge pages measured 10-25% faster on the glimpse encoder's 3x3 conv). The storage
/// pool cannot give that, so the conv op keeps its own few buffers here.
final class ConvWorkspace: @unchecked Sendable {
    static let shared = ConvWorkspace()

    private var cached: [(pointer: UnsafeMutableRawPointer, bytes: Int)] = []
    private let lock = NSLock()
    /// Buffers kept for reuse; forward and backward of one layer never hold more than one each.
    private let maxCached = 4
    private static let hugePage = 2 << 20

    /// Runs `body` with at least `floats` floats of scratch (nil for none, or if allocation failed:
    /// the kernels then allocate their own).
    func with<T>(floats: Int, _ body: (UnsafeMutablePointer<Float>?) throws -> T) rethrows -> T {
        guard floats > 0, let (raw, bytes) = take(bytes: floats * MemoryLayout<Float>.stride) else { return try body(nil) }
        defer { give(raw, bytes) }
        return try body(raw.bindMemory(to: Float.self, capacity: bytes / MemoryLayout<Float>.stride))
    }

    private func take(bytes needed: Int) -> (UnsafeMutableRawPointer, Int)? {
        lock.lock()
        // The smallest cached buffer that is large enough.
        if let i = cached.indices.filter({ cached[$0].bytes >= needed }).min(by: { cached[$0].bytes < cached[$1].bytes }) {
            let buffer = cached.remove(at: i)
            lock.unlock()
            return (buffer.pointer, buffer.bytes)
        }
        lock.unlock()
        let bytes = (needed + ConvWorkspace.hugePage - 1) / ConvWorkspace.hugePage * ConvWorkspace.hugePage
        var raw: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&raw, ConvWorkspace.hugePage, bytes) == 0, let raw else { return nil }
        #if os(Linux)
        _ = madvise(raw, bytes, MADV_HUGEPAGE)
        #endif
        return (raw, bytes)
    }

    private func give(_ raw: UnsafeMutableRawPointer, _ bytes: Int) {
        lock.lock()
        cached.append((raw, bytes))
        var evicted: UnsafeMutableRawPointer? = nil
        if cached.count > maxCached, let i = cached.indices.min(by: { cached[$0].bytes < cached[$1].bytes }) {
            evicted = cached.remove(at: i).pointer
        }
        lock.unlock()
        free(evicted)
    }
}
