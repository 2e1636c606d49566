import XCTest
@testable import SpaceCore

/// The fused execution of Sequentials (blocked feature maps, convolutions chained with their pointwise
/// stages, narrow and dense kernels) against running every layer on its own on the im2col engine:
/// the same outputs, input gradients, parameter gradients and batch-norm statistics.
final class FusedChainTests: XCTestCase {
    /// Runs `f` twice, fused and layer by layer, and compares outputs and gradients.
    func compare(_ module: Module, input: Tensor, rtol: Float = 2e-4, atol: Float = 2e-5,
                 file: StaticString = #filePath, line: UInt = #line, _ f: (Tensor) throws -> Tensor) throws {
        let params = module.parameters()
        let buffers = module.namedBuffers().compactMap { entry -> Tensor? in if case .float(let t) = entry.1 { return t } else { return nil } }
        let savedBuffers = buffers.map { $0.clone() }
        func run(engine: ConvolutionEngine) throws -> (out: Tensor, grads: [Tensor?], buffers: [Tensor]) {
            try ConvolutionEngine.with(engine) {
                for (b, saved) in zip(buffers, savedBuffers) { try b.copy(from: saved) }
                input.zeroGrad(); module.zeroGrad()
                let out = try f(input)
                let w = SeededNoise(seed: 99).normal(out.shape)
                try (out * w).sum().backward()
                return (out.detached(), [input.grad] + params.map { $0.grad }, buffers.map { $0.clone() })
            }
        }
        let fused = try run(engine: .onednn)
        let reference = try run(engine: .im2col)
        assertClose(fused.out, reference.out, rtol: rtol, atol: atol, "output", file: file, line: line)
        for (k, (a, b)) in zip(fused.grads, reference.grads).enumerated() {
            guard let a, let b else { XCTAssertTrue(a == nil && b == nil, "gradient \(k) present in one run only", file: file, line: line); continue }
            let scale = b.array.map { abs($0) }.max() ?? 0
            assertClose(a, b, rtol: rtol, atol: atol + rtol * scale, "gradient \(k)", file: file, line: line)
        }
        for (k, (a, b)) in zip(fused.buffers, reference.buffers).enumerated() {
            assertClose(a, b, rtol: 1e-5, atol: 1e-6, "buffer \(k)", file: file, line: line)
        }
    }

    func testDecoderStyleChainWithShufflesCELUAndGroupNorm() throws {
        // SPACE's glimpse decoder in miniature: 1x1 convs with pixel shuffles, 3x3 convs, CELU + GroupNorm,
        // and a 3x3 head to a few channels (the narrow kernel).
        let seq = Sequential(
            Conv2d(inputChannels: 8, outputChannels: 64, kernelSize: 1), CELU(), GroupNorm(groups: 16, channels: 64),
            Conv2d(inputChannels: 64, outputChannels: 128, kernelSize: 1), PixelShuffle(2), CELU(), GroupNorm(groups: 8, channels: 32),
            Conv2d(inputChannels: 32, outputChannels: 32, kernelSize: 3, padding: 1), CELU(alpha: 0.7), GroupNorm(groups: 4, channels: 32),
            Conv2d(inputChannels: 32, outputChannels: 64, kernelSize: 1), PixelShuffle(2), CELU(), GroupNorm(groups: 4, channels: 16),
            Conv2d(inputChannels: 16, outputChannels: 4, kernelSize: 3, padding: 1))
        let x = randn([5, 8, 1, 1], seed: 1)
        try compare(seq, input: x) { try seq($0) }
    }

    func testEncoderStyleChainWithStridesDenseTailAndFewInputChannels() throws {
        // The glimpse encoder in miniature: a 3-channel input (its input gradient through the narrow
        // kernel), strided 4x4 convs, a dense last conv, a trailing CELU + GroupNorm, then Flatten.
        let seq = Sequential(
            Conv2d(inputChannels: 3, outputChannels: 16, kernelSize: 3, padding: 1), CELU(), GroupNorm(groups: 4, channels: 16),
            Conv2d(inputChannels: 16, outputChannels: 32, kernelSize: 4, stride: 2, padding: 1), CELU(), GroupNorm(groups: 8, channels: 32),
            // A 1x1 map: 8 values per group (a group of 2 values amplifies round-off without bound).
            Conv2d(inputChannels: 32, outputChannels: 32, kernelSize: 4), CELU(), GroupNorm(groups: 4, channels: 32),
            Flatten())
        let x = randn([6, 3, 8, 8], seed: 2)
        try compare(seq, input: x) { try seq($0) }
    }

    func testInferenceChainsMatchLayerByLayer() throws {
        // Without gradients (eval, show, detection) convolutions take their inference kernels (Winograd
        // with kept weights, ...): a chain with every kind of stage (CELU of either alpha, ELU with batch
        // norm in evaluation mode, norm before or after the activation, a shuffle) gives the outputs of
        // running every layer on its own.
        let bn = BatchNorm2d(channels: 32)
        bn.train(false)
        try bn.runningVar.copy(from: randn([32], seed: 7).abs() + 0.5)
        let seq = Sequential(
            Conv2d(inputChannels: 3, outputChannels: 16, kernelSize: 3, padding: 1), CELU(), GroupNorm(groups: 4, channels: 16),
            Conv2d(inputChannels: 16, outputChannels: 32, kernelSize: 4, stride: 2, padding: 1), ELU(alpha: 0.5), bn,
            Conv2d(inputChannels: 32, outputChannels: 64, kernelSize: 1), PixelShuffle(2), CELU(), GroupNorm(groups: 4, channels: 16),
            Conv2d(inputChannels: 16, outputChannels: 32, kernelSize: 4, stride: 2, padding: 1), CELU(alpha: 0.7), GroupNorm(groups: 8, channels: 32),
            Conv2d(inputChannels: 32, outputChannels: 32, kernelSize: 3, padding: 1), CELU(), GroupNorm(groups: 8, channels: 32),
            Conv2d(inputChannels: 32, outputChannels: 32, kernelSize: 1), GroupNorm(groups: 8, channels: 32), CELU(),
            Conv2d(inputChannels: 32, outputChannels: 4, kernelSize: 3, padding: 1))
        let x = randn([4, 3, 16, 16], seed: 3)
        func run(_ engine: ConvolutionEngine) throws -> Tensor {
            try ConvolutionEngine.with(engine) { try Tensor.noGrad { try seq(x) } }
        }
        assertClose(try run(.onednn), try run(.im2col), rtol: 2e-4, atol: 2e-5, "output")
    }

    func testBatchNormELUChainUpdatesRunningStatisticsAlike() throws {
        let seq = Sequential(
            Conv2d(inputChannels: 4, outputChannels: 16, kernelSize: 3, stride: 2, padding: 1), BatchNorm2d(channels: 16), ELU(),
            Conv2d(inputChannels: 16, outputChannels: 32, kernelSize: 3), BatchNorm2d(channels: 32), ELU(),
            Conv2d(inputChannels: 32, outputChannels: 3, kernelSize: 1))
        let x = randn([4, 4, 12, 12], seed: 3)
        try compare(seq, input: x) { try seq($0) }
        // Evaluation mode: the running statistics are read, not updated.
        seq.eval()
        try compare(seq, input: x) { try seq($0) }
    }

    func testUnknownLayersEndAFusedRun() throws {
        // A Sigmoid between convs is not a pointwise stage the planner knows: it runs on its own, on NCHW.
        let seq = Sequential(
            Conv2d(inputChannels: 3, outputChannels: 16, kernelSize: 3, padding: 1), Sigmoid(),
            Conv2d(inputChannels: 16, outputChannels: 16, kernelSize: 3, padding: 1), CELU(), GroupNorm(groups: 4, channels: 16),
            Tanh(), Conv2d(inputChannels: 16, outputChannels: 2, kernelSize: 1))
        let x = randn([2, 3, 6, 6], seed: 4)
        try compare(seq, input: x) { try seq($0) }
    }

    func testPlannerFusesStagesAndPicksNarrowAndDenseKernels() throws {
        // The comparisons above would pass with fusion silently off: check the ops that actually ran.
        let seq = Sequential(
            Conv2d(inputChannels: 8, outputChannels: 64, kernelSize: 1), CELU(), GroupNorm(groups: 16, channels: 64),
            Conv2d(inputChannels: 64, outputChannels: 64, kernelSize: 1), PixelShuffle(2), CELU(), GroupNorm(groups: 4, channels: 16),
            Conv2d(inputChannels: 16, outputChannels: 4, kernelSize: 3, padding: 1))
        let profiler = Profiler()
        profiler.attach(seq)
        profiler.start()
        let y = try seq(randn([3, 8, 1, 1], seed: 6))
        try y.sum().backward()
        profiler.stop()
        let report = profiler.report
        XCTAssertEqual(y.shape, [3, 4, 2, 2])
        XCTAssertTrue(report.contains { $0.op == "pointwise_conv2d" }, "no fused stage ran: \(report.map { $0.op })")
        XCTAssertTrue(report.contains { $0.detail.contains("[dense") }, "the 1x1 convolutions of 1x1 maps should be products")
        XCTAssertTrue(report.contains { $0.detail.contains("[narrow") }, "the 4-channel head should take the narrow kernel")
        XCTAssertFalse(report.contains { $0.op == "group_norm" || $0.op == "celu" }, "unfused layers ran")
    }

    func testFeatureMapReordersRoundTripWithGradients() throws {
        let x = randn([2, 32, 3, 5], seed: 5)
        try gradCheck([x]) { inputs in
            let m = try FeatureMap(nchw: inputs[0])
            let blocked = try m.to(.blocked16)
            XCTAssertEqual(blocked.tensor.shape, [2, 2, 3, 5, 16])
            return try blocked.to(.nhwc).to(.nchw).tensor * 2
        }
    }

    func testShuffledChannelOrderIsAPermutation() {
        let order = shuffledChannelOrder(channels: 64, shuffle: 2)
        XCTAssertEqual(Set(order).count, 64)
        // Sub-pixel 1's block starts with PyTorch's channel 1 (channel 0, sub-pixel 1).
        XCTAssertEqual(order[16], 1)
        XCTAssertEqual(order[0], 0)
        XCTAssertEqual(order[1], 4)
    }
}
