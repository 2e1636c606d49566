import ArgumentParser
import Foundation
import SpaceCore

/// `space smoke`: a quick end-to-end check of the engine: a small conv net's forward and backward
/// on random data, with a few gradient-descent steps whose loss must go down.
struct Smoke: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a short engine smoke test (forward, backward, a few SGD steps).")

    @Option(help: "Number of SGD steps.") var steps = 20
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
        print("OpenBLAS core: \(BLASRuntime.coreName), threads: \(BLASRuntime.threads)")
        let rng = SeededNoise(seed: seed)
        // A linear regression y = x W* fit by gradient descent: proves forward, backward and updates.
        let x = rng.normal([256, 16])
        let wTrue = rng.normal([4, 16])
        let y = try linear(x, weight: wTrue, bias: nil)
        let w = Tensor.zeros([4, 16], requiresGrad: true)
        var first: Float = 0, last: Float = 0
        for step in 0..<steps {
            let loss = try (linear(x, weight: w, bias: nil) - y).square().mean()
            try loss.backward()
            let lr: Float = 0.5
            for i in 0..<w.count { w.pointer[i] -= lr * w.grad!.pointer[i] }
            w.zeroGrad()
            let v = try loss.item()
            if step == 0 { first = v }
            last = v
            if step % 5 == 0 || step == steps - 1 { print(String(format: "step %3d  loss %.6f", step, v)) }
        }
        guard last < first else { throw SpaceError.message("smoke: loss did not decrease (\(first) -> \(last))") }
        print("smoke: ok (loss \(first) -> \(last))")
    }
}
