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
    }
}

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
