import XCTest
import SpaceCore
@testable import SpaceModels

/// SPACE run on the fused engine (oneDNN, blocked maps, the merged heads, the component decoder's
/// broadcast layer in closed form, batched mask decoding) against every layer on its own on the im2col
/// engine, for architectures the parity fixtures do not cover: the same loss, outputs and gradients.
final class FusedExecutionTests: XCTestCase {
    func compare(_ arch: SpaceArch, batch: Int, globalStep: Int, eval: Bool = false,
                 file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try Space(arch: arch)
        if eval { model.eval() }
        let x = SeededNoise(seed: 11).uniform([batch, 3, arch.imgShape[0], arch.imgShape[1]])
        let params = model.namedParameters()
        let buffers = model.namedBuffers().compactMap { e -> Tensor? in if case .float(let t) = e.1 { return t } else { return nil } }
        let saved = buffers.map { $0.clone() }
        func run(_ engine: ConvolutionEngine) throws -> (out: SpaceOutput, grads: [Tensor?]) {
            try ConvolutionEngine.with(engine) {
                for (b, s) in zip(buffers, saved) { try b.copy(from: s) }
                model.zeroGrad()
                let out = try model(x, globalStep: globalStep, noise: SeededNoise(seed: 5))
                try out.loss.backward()
                return (out, params.map { $0.1.grad?.clone() })
            }
        }
        let fused = try run(.onednn), reference = try run(.im2col)
        let loss = try fused.out.loss.item(), refLoss = try reference.out.loss.item()
        XCTAssertEqual(loss, refLoss, accuracy: abs(refLoss) * 1e-5 + 1e-3, "loss", file: file, line: line)
        // Outputs: both engines run in float32 and each is held to the parity rule (3e-4 of the
        // tensor's max from the exact value), so the two may differ by twice that. alpha_map, at the
        // end of the glimpse decoder's ten layers, is where round-off shows: 0.5e-4 to 1.2e-4 of its
        // max on AVX-512, up to 3.3e-4 with the scalar kernels and OpenBLAS's Sandybridge ones.
        for name in ["y", "alpha_map", "z_pres", "z_where", "masks", "comps"] {
            let a = fused.out.logValues[name]!, b = reference.out.logValues[name]!
            let scale = b.array.map { abs($0) }.max() ?? 1
            XCTAssertEqual(a.shape, b.shape, name, file: file, line: line)
            let worst = zip(a.array, b.array).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 6e-4 * scale, "\(name): \(worst) of max \(scale)", file: file, line: line)
        }
        // Gradients: each parameter's gradient within 1e-3 of its norm (the parity rule), plus a floor
        // for gradients that are round-off (a conv bias under batch norm).
        let total = reference.grads.compactMap { $0 }.reduce(0.0) { acc, g in acc + g.array.reduce(0.0) { $0 + Double($1 * $1) } }.squareRoot()
        for ((name, _), (a, b)) in zip(params, zip(fused.grads, reference.grads)) {
            guard let a, let b else { XCTAssertTrue(a == nil && b == nil, name, file: file, line: line); continue }
            let norm = b.array.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
            let worst = zip(a.array, b.array).map { Double(abs($0 - $1)) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1e-3 * norm + 1e-6 * total, "\(name): \(worst) (norm \(norm))", file: file, line: line)
        }
    }

    func testSmallGridStrongComponentDecoder() throws {
        var arch = SpaceArch()
        arch.G = 4; arch.K = 1
        try compare(arch, batch: 2, globalStep: 7000)
    }

    func testMidGridTwoComponentsBoundaryLoss() throws {
        var arch = SpaceArch()
        arch.G = 8; arch.K = 2; arch.boundaryLoss = true
        try compare(arch, batch: 3, globalStep: 15000)
    }

    func testEvaluationMode() throws {
        var arch = SpaceArch()
        arch.G = 8; arch.K = 3
        try compare(arch, batch: 2, globalStep: 500, eval: true)
    }
}
