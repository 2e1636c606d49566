import ArgumentParser
import Foundation
import SpaceCore

/// `space bench`: release-build benchmarks of the engine's kernels.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmark engine kernels (use a release build).")

    func run() throws {
        print("OpenBLAS core: \(BLASRuntime.coreName), threads: \(BLASRuntime.threads)")
        let rng = SeededNoise(seed: 1)
        for n in [512, 1024] {
            let a = rng.normal([n, n]), b = rng.normal([n, n])
            _ = try a.matmul(b)
            let t = try time(repeats: 5) { _ = try a.matmul(b) }
            print(String(format: "matmul %dx%dx%d: %.2f ms, %.1f GFLOP/s", n, n, n, t * 1e3, 2.0 * Double(n * n * n) / t / 1e9))
        }
        try benchConv2d(rng)
    }

    /// conv2d at SPACE's shapes. GFLOP/s count 2*N*O*C*kh*kw*Ho*Wo per pass, twice that for backward
    /// (input and weight gradients; the bias gradient is a sum). Backward is timed through autograd.
    func benchConv2d(_ rng: SeededNoise) throws {
        struct Shape { let name: String; let x: [Int]; let w: [Int]; let stride: Int; let pad: Int }
        let shapes = [
            Shape(name: "3x3 128->128 p1, 3072 maps 4x4 (glimpse enc)", x: [3072, 128, 4, 4], w: [128, 128, 3, 3], stride: 1, pad: 1),
            Shape(name: "3x3 32->32 p1, 36 maps 130x130", x: [36, 32, 130, 130], w: [32, 32, 3, 3], stride: 1, pad: 1),
            Shape(name: "4x4 s2 3->16 p1, 12 maps 128x128", x: [12, 3, 128, 128], w: [16, 3, 4, 4], stride: 2, pad: 1),
            Shape(name: "3x3 16->16 p1, 12 maps 128x128", x: [12, 16, 128, 128], w: [16, 16, 3, 3], stride: 1, pad: 1),
            Shape(name: "1x1 128->128, 12 maps 16x16", x: [12, 128, 16, 16], w: [128, 128, 1, 1], stride: 1, pad: 0),
            Shape(name: "1x1 128->256, 3072 maps 1x1", x: [3072, 128, 1, 1], w: [256, 128, 1, 1], stride: 1, pad: 0),
        ]
        print("conv2d (GFLOP/s at the median time, best run in parentheses):")
        for s in shapes {
            let x = rng.normal(s.x), w = rng.normal(s.w).affine(scale: 0.1, shift: 0), b = rng.normal([s.w[0]])
            for t in [x, w, b] { t.requiresGrad = true }
            let conv = { try conv2d(x, weight: w, bias: b, stride: s.stride, padding: s.pad) }
            let y0 = try conv()
            let g = rng.normal(y0.shape)
            try y0.backward(gradient: g)  // warm-up: pools the buffers, wakes the BLAS threads
            let (ho, wo) = (y0.shape[2], y0.shape[3])
            let flops = 2.0 * Double(s.x[0] * s.w[0] * s.w[1] * s.w[2] * s.w[3] * ho * wo)
            // About a second per direction, at least 3 runs.
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try Tensor.noGrad { try conv() }
            let once = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            let repeats = Swift.max(3, Swift.min(200, Int(1.0 / Swift.max(once, 1e-6))))
            var fwd: [Double] = [], bwd: [Double] = []
            for _ in 0..<repeats {
                let f = try timeOnce { _ = try Tensor.noGrad { try conv() } }
                fwd.append(f)
            }
            for _ in 0..<Swift.max(3, repeats / 2) {
                let y = try conv()
                for t in [x, w, b] { t.zeroGrad() }
                bwd.append(try timeOnce { try y.backward(gradient: g) })
            }
            let (fm, fb) = (median(fwd), fwd.min()!), (bm, bb) = (median(bwd), bwd.min()!)
            let name = s.name.padding(toLength: 46, withPad: " ", startingAt: 0)
            print("  " + name + String(format: " fwd %8.2f ms %6.1f (%6.1f) GFLOP/s   bwd %8.2f ms %6.1f (%6.1f) GFLOP/s",
                                       fm * 1e3, flops / fm / 1e9, flops / fb / 1e9, bm * 1e3, 2 * flops / bm / 1e9, 2 * flops / bb / 1e9))
        }
    }
}

/// Wall time of one run of `body`, in seconds.
func timeOnce(_ body: () throws -> Void) throws -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

/// Median wall time of `repeats` runs of `body`, in seconds.
func time(repeats: Int, _ body: () throws -> Void) throws -> Double {
    var times: [Double] = []
    for _ in 0..<repeats {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
    }
    return times.sorted()[times.count / 2]
}
