import XCTest
@testable import SpaceCore

/// A leaf module with a parameter and a renamed buffer.
private final class ProbeBlock: Module {
    let weight: Tensor
    @Buffer("running_stat") var runningStat: Tensor

    init(_ value: Float) {
        weight = Tensor.full([2], value, requiresGrad: true)
        super.init()
        runningStat = Tensor.full([1], value)
    }
}

/// Exercises every discovery rule: renamed child, module array, own parameters declared after the
/// children, a nil optional, a renamed parameter, buffers, a hidden tensor and non-state properties.
private final class ProbeModel: Module {
    @StateKey("img_encoder") var imageEncoder: Sequential
    let blocks: [ProbeBlock]
    let scale: Tensor
    var missingBias: Tensor? = nil
    @Buffer("prior_mean") var priorMean: Tensor
    @Transient var cache: Tensor? = nil
    let hiddenCount = 3
    let label = "not state"
    @StateKey("rnn_h") var rnnH: Tensor

    override init() {
        blocks = [ProbeBlock(1), ProbeBlock(2)]
        scale = Tensor.ones([3], requiresGrad: true)
        super.init()
        imageEncoder = Sequential(Linear(inputCount: 3, outputCount: 2, noise: SeededNoise(seed: 1)), ReLU())
        priorMean = Tensor.zeros([1])
        cache = Tensor.zeros([5])
        rnnH = Tensor.zeros([4], requiresGrad: true)
    }
}

final class ModuleTests: XCTestCase {
    // MARK: Keys

    func testSequentialKeysSkipParameterFreeLayers() throws {
        let seq = Sequential(
            Conv2d(inputChannels: 3, outputChannels: 4, kernelSize: 3, padding: 1, noise: SeededNoise(seed: 1)),
            CELU(),
            GroupNorm(groups: 2, channels: 4))
        XCTAssertEqual(seq.namedParameters().map(\.0), ["0.weight", "0.bias", "2.weight", "2.bias"])
        XCTAssertEqual(seq.namedParameters().map(\.1.shape), [[4, 3, 3, 3], [4], [4], [4]])
        XCTAssertEqual(seq.stateDict().keys.sorted(), ["0.bias", "0.weight", "2.bias", "2.weight"])
        XCTAssertTrue(seq.namedBuffers().isEmpty)
    }

    func testBatchNormStateKeysAndKinds() throws {
        let bn = BatchNorm2d(channels: 5)
        XCTAssertEqual(bn.namedState().map(\.0), ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"])
        XCTAssertEqual(bn.namedParameters().map(\.0), ["weight", "bias"])
        XCTAssertEqual(bn.namedBuffers().map(\.0), ["running_mean", "running_var", "num_batches_tracked"])
        XCTAssertEqual(bn.namedState().map(\.1.dtype), ["F32", "F32", "F32", "F32", "I64"])
        XCTAssertEqual(bn.stateDict()["num_batches_tracked"]?.shape, [])
        XCTAssertEqual(bn.numBatchesTracked.values, [0])
        XCTAssertEqual(bn.runningMean.array, [0, 0, 0, 0, 0])
        XCTAssertEqual(bn.runningVar.array, [1, 1, 1, 1, 1])
        XCTAssertTrue(bn.parameters().allSatisfy(\.requiresGrad))
        XCTAssertFalse(bn.runningMean.requiresGrad)
    }

    func testReflectionRulesAndPyTorchOrder() throws {
        let m = ProbeModel()
        // Own parameters first (declaration order), then each child's, as torch's named_parameters().
        XCTAssertEqual(m.namedParameters().map(\.0),
                       ["scale", "rnn_h", "img_encoder.0.weight", "img_encoder.0.bias", "blocks.0.weight", "blocks.1.weight"])
        // state_dict: per module its parameters, then its buffers, then its children.
        XCTAssertEqual(m.namedState().map(\.0),
                       ["scale", "rnn_h", "prior_mean", "img_encoder.0.weight", "img_encoder.0.bias",
                        "blocks.0.weight", "blocks.0.running_stat", "blocks.1.weight", "blocks.1.running_stat"])
        XCTAssertEqual(m.namedBuffers().map(\.0), ["prior_mean", "blocks.0.running_stat", "blocks.1.running_stat"])
        XCTAssertEqual(m.namedModules().map(\.0), ["", "img_encoder", "img_encoder.0", "img_encoder.1", "blocks.0", "blocks.1"])
        XCTAssertEqual(m.children().map(\.0), ["img_encoder", "blocks.0", "blocks.1"])
        XCTAssertEqual(m.parameterCount, 3 + 4 + 6 + 2 + 2 + 2)
    }

    func testSharedParameterListedOnce() throws {
        let lin = Linear(inputCount: 2, outputCount: 2, noise: SeededNoise(seed: 3))
        let seq = Sequential(lin, ReLU(), lin)
        XCTAssertEqual(seq.namedParameters().map(\.0), ["0.weight", "0.bias"])
        XCTAssertEqual(seq.stateDict().count, 4)
    }

    // MARK: Initialisation

    func testDefaultInitialisationBounds() throws {
        let lin = Linear(inputCount: 16, outputCount: 8, noise: SeededNoise(seed: 5))
        let bound: Float = 1 / 4
        for p in lin.parameters() {
            XCTAssertTrue(p.requiresGrad)
            XCTAssertTrue(p.array.allSatisfy { abs($0) <= bound }, "outside U(-1/sqrt(fan_in), 1/sqrt(fan_in))")
            XCTAssertGreaterThan(p.array.map { abs($0) }.max()!, bound * 0.5, "suspiciously narrow spread")
        }
        let conv = Conv2d(inputChannels: 2, outputChannels: 3, kernelSize: 3, noise: SeededNoise(seed: 5))
        let convBound = 1 / Float(18).squareRoot()
        XCTAssertTrue(conv.weight.array.allSatisfy { abs($0) <= convBound })
        XCTAssertTrue(conv.bias!.array.allSatisfy { abs($0) <= convBound })

        // The same seed gives the same weights; consecutive layers from one source differ.
        let again = Linear(inputCount: 16, outputCount: 8, noise: SeededNoise(seed: 5))
        XCTAssertEqual(lin.weight.array, again.weight.array)
        let shared = SeededNoise(seed: 9)
        let a = Linear(inputCount: 4, outputCount: 4, noise: shared), b = Linear(inputCount: 4, outputCount: 4, noise: shared)
        XCTAssertNotEqual(a.weight.array, b.weight.array)

        let gn = GroupNorm(groups: 2, channels: 6)
        XCTAssertEqual(gn.weight!.array, [Float](repeating: 1, count: 6))
        XCTAssertEqual(gn.bias!.array, [Float](repeating: 0, count: 6))
        XCTAssertNil(Linear(inputCount: 3, outputCount: 2, bias: false).bias)
        XCTAssertEqual(Linear(inputCount: 3, outputCount: 2, bias: false).namedParameters().map(\.0), ["weight"])
    }

    // MARK: Forward passes

    func testLinearForwardByHand() throws {
        let lin = Linear(inputCount: 3, outputCount: 2)
        try lin.loadStateDict(["weight": Tensor([1, 2, 3, -1, 0, 0.5], shape: [2, 3]), "bias": Tensor([0.5, -1], shape: [2])])
        let x = try Tensor([1, 1, 1, 2, 0, -2], shape: [2, 3])
        assertClose(try lin(x), try Tensor([6.5, -1.5, -3.5, -4], shape: [2, 2]))
    }

    func testLinearModuleGradCheck() throws {
        let lin = Linear(inputCount: 5, outputCount: 3, noise: SeededNoise(seed: 11))
        let x = randn([4, 5], seed: 12)
        try gradCheck([x, lin.weight, lin.bias!]) { _ in try lin(x) }
    }

    func testSequentialForwardMatchesManualComposition() throws {
        let l1 = Linear(inputCount: 4, outputCount: 6, noise: SeededNoise(seed: 1))
        let l2 = Linear(inputCount: 6, outputCount: 2, noise: SeededNoise(seed: 2))
        let seq = Sequential(l1, ELU(alpha: 0.5), l2, Sigmoid())
        let x = randn([3, 4], seed: 4, requiresGrad: false)
        assertClose(try seq(x), try l2(l1(x).elu(alpha: 0.5)).sigmoid())
        XCTAssertEqual(seq.count, 4)
        XCTAssertTrue(seq[2] === l2)
    }

    func testActivationModulesMatchTensorOps() throws {
        let x = randn([2, 8, 2, 2], seed: 21, requiresGrad: false)
        assertClose(try CELU(alpha: 0.7)(x), x.celu(alpha: 0.7))
        assertClose(try ELU()(x), x.elu())
        assertClose(try ReLU()(x), x.relu())
        assertClose(try Sigmoid()(x), x.sigmoid())
        assertClose(try Tanh()(x), x.tanh())
        assertClose(try Softplus()(x), x.softplus())
        assertClose(try Identity()(x), x)
        XCTAssertEqual(try PixelShuffle(2)(x).shape, [2, 2, 4, 4])
        assertClose(try PixelShuffle(2)(x), try x.pixelShuffle(2))
        XCTAssertEqual(try Flatten()(x).shape, [2, 32])
        XCTAssertEqual(try Flatten(startDim: 2)(x).shape, [2, 8, 4])
    }

    func testConv2dAndGroupNormModulesCallTheirOps() throws {
        let conv = Conv2d(inputChannels: 2, outputChannels: 4, kernelSize: 3, stride: 2, padding: 1, noise: SeededNoise(seed: 8))
        let x = randn([2, 2, 6, 6], seed: 9, requiresGrad: false)
        let y = try conv(x)
        XCTAssertEqual(y.shape, [2, 4, 3, 3])
        assertClose(y, try conv2d(x, weight: conv.weight, bias: conv.bias, stride: 2, padding: 1))
        let gn = GroupNorm(groups: 2, channels: 4)
        assertClose(try gn(y), try groupNorm(y, groups: 2, weight: gn.weight, bias: gn.bias))
    }

    func testBatchNormTrainingUpdatesStatsAndCounter() throws {
        let bn = BatchNorm2d(channels: 2)
        let x = try Tensor([1, 2, 3, 4, 10, 10, 10, 10, 5, 6, 7, 8, 0, 0, 0, 0], shape: [2, 2, 2, 2])
        _ = try bn(x)
        _ = try bn(x)
        XCTAssertEqual(bn.numBatchesTracked.values, [2])
        // Channel 0's batch mean is 4.5, channel 1's is 5: running = 0.9 (0.9 * 0 + 0.1 m) + 0.1 m.
        assertClose(bn.runningMean.array, [0.19 * 4.5, 0.19 * 5], rtol: 1e-5)
        bn.eval()
        let before = bn.runningMean.array
        _ = try bn(x)
        XCTAssertEqual(bn.numBatchesTracked.values, [2], "eval mode does not count batches")
        XCTAssertEqual(bn.runningMean.array, before, "eval mode does not update running stats")
        // (N, C) input, as BatchNorm1d.
        let bn1: BatchNorm1d = BatchNorm1d(channels: 3)
        XCTAssertEqual(try bn1(randn([4, 3], seed: 2, requiresGrad: false)).shape, [4, 3])
    }

    // MARK: Modes and gradients

    func testTrainEvalPropagatesToEveryModule() throws {
        let m = ProbeModel()
        XCTAssertTrue(m.namedModules().allSatisfy { $0.1.training })
        m.eval()
        XCTAssertTrue(m.namedModules().allSatisfy { !$0.1.training })
        m.train()
        XCTAssertTrue(m.namedModules().allSatisfy { $0.1.training })
    }

    func testZeroGradClearsEveryParameter() throws {
        let seq = Sequential(Linear(inputCount: 3, outputCount: 3), Tanh(), Linear(inputCount: 3, outputCount: 1))
        try seq(randn([2, 3], seed: 1, requiresGrad: false)).sum().backward()
        XCTAssertTrue(seq.parameters().allSatisfy { $0.grad != nil })
        seq.zeroGrad()
        XCTAssertTrue(seq.parameters().allSatisfy { $0.grad == nil })
    }

    // MARK: Loading

    private func snapshot(_ m: Module) -> [String: [Double]] {
        var out: [String: [Double]] = [:]
        for (k, v) in m.namedState() {
            switch v {
            case .float(let t): out[k] = t.array.map(Double.init)
            case .int64(let t): out[k] = t.values.map(Double.init)
            }
        }
        return out
    }

    func testLoadStateDictRoundTripKeepsTensorIdentity() throws {
        let source = ProbeModel(), target = ProbeModel()
        try source.imageEncoder[0].loadStateDict(["weight": Tensor.full([2, 3], 0.25), "bias": Tensor([7, 8], shape: [2])])
        source.blocks[1].runningStat.pointer[0] = 42
        let weightBefore = target.imageEncoder[0].namedParameters()[0].1
        try target.loadStateDict(source.stateDict())
        XCTAssertEqual(snapshot(target), snapshot(source))
        XCTAssertTrue(target.imageEncoder[0].namedParameters()[0].1 === weightBefore, "loading copies in place")
        XCTAssertFalse(target.imageEncoder[0].namedParameters()[0].1.storage === source.imageEncoder[0].namedParameters()[0].1.storage)

        // Int64 buffers load too.
        let bn = BatchNorm2d(channels: 2), other = BatchNorm2d(channels: 2)
        other.numBatchesTracked.values = [17]
        try bn.loadStateDict(other.stateDict())
        XCTAssertEqual(bn.numBatchesTracked.values, [17])
        // Loading a module's own state is a no-op.
        try bn.loadStateDict(bn.stateDict())
        XCTAssertEqual(bn.numBatchesTracked.values, [17])
    }

    func testLoadStateDictMissingKeyChangesNothing() throws {
        let m = ProbeModel()
        let before = snapshot(m)
        var state = ProbeModel().stateDict().mapValues { $0.clone() }
        for (_, v) in state { if let t = v.tensor { for i in 0..<t.count { t.pointer[i] += 1 } } }
        state["blocks.1.running_stat"] = nil
        XCTAssertThrowsError(try m.loadStateDict(state)) { error in
            guard case SpaceError.parameter(let key, let message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "blocks.1.running_stat")
            XCTAssertTrue(message.contains("missing") && message.contains("[1]"), message)
        }
        XCTAssertEqual(snapshot(m), before, "a failed load must leave the module unchanged")
    }

    func testLoadStateDictUnexpectedKeyChangesNothing() throws {
        let m = ProbeModel()
        let before = snapshot(m)
        var state = ProbeModel().stateDict().mapValues { $0.clone() }
        for (_, v) in state { if let t = v.tensor { for i in 0..<t.count { t.pointer[i] += 1 } } }
        state["blocks.2.weight"] = .float(Tensor.zeros([2]))
        XCTAssertThrowsError(try m.loadStateDict(state)) { error in
            guard case SpaceError.parameter(let key, let message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "blocks.2.weight")
            XCTAssertTrue(message.contains("unexpected") && message.contains("[2]"), message)
        }
        XCTAssertEqual(snapshot(m), before)
    }

    func testLoadStateDictShapeMismatchNamesBothShapesAndChangesNothing() throws {
        let m = ProbeModel()
        let before = snapshot(m)
        var state = ProbeModel().stateDict().mapValues { $0.clone() }
        for (_, v) in state { if let t = v.tensor { for i in 0..<t.count { t.pointer[i] += 1 } } }
        state["img_encoder.0.weight"] = .float(Tensor.zeros([3, 2]))
        XCTAssertThrowsError(try m.loadStateDict(state)) { error in
            guard case SpaceError.parameter(let key, let message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "img_encoder.0.weight")
            XCTAssertTrue(message.contains("[3, 2]") && message.contains("[2, 3]"), message)
        }
        XCTAssertEqual(snapshot(m), before)
        // Shape mismatches fail even when not strict.
        XCTAssertThrowsError(try m.loadStateDict(state, strict: false))
        XCTAssertEqual(snapshot(m), before)
    }

    func testLoadStateDictDtypeMismatch() throws {
        let bn = BatchNorm2d(channels: 2)
        var state = bn.stateDict()
        state["num_batches_tracked"] = .float(Tensor(scalar: 3))
        XCTAssertThrowsError(try bn.loadStateDict(state)) { error in
            guard case SpaceError.parameter(let key, let message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "num_batches_tracked")
            XCTAssertTrue(message.contains("F32") && message.contains("I64"), message)
        }
    }

    func testLoadStateDictReportsEveryProblem() throws {
        let m = ProbeModel()
        XCTAssertThrowsError(try m.loadStateDict([String: StateValue]())) { error in
            guard case SpaceError.parameter(let key, let message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "scale")
            XCTAssertTrue(message.contains("and 8 more"), message)
        }
    }

    func testNonStrictLoadIgnoresMissingAndUnexpectedKeys() throws {
        let m = ProbeModel()
        try m.loadStateDict(["scale": .float(Tensor.full([3], 5)), "extra": .float(Tensor.zeros([1]))], strict: false)
        XCTAssertEqual(m.scale.array, [5, 5, 5])
    }
}
