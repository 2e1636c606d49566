import XCTest
import SpaceCore
import SpaceModels
@testable import SpaceTrain

/// In-memory batches: a fixed set of random images, reshuffled per epoch from the seed.
struct MemoryBatches: EpochBatches {
    let images: [Tensor]
    let batchSize: Int
    let seed: UInt64
    var batchesPerEpoch: Int { images.count / batchSize }
    func batches(epoch: Int, skip: Int) throws -> AnyIterator<Tensor> {
        var order = Array(images.indices)
        var g = SeededNoise(seed: seed &+ UInt64(epoch))
        order.shuffle(using: &g)
        var b = skip
        return AnyIterator {
            guard b < batchesPerEpoch else { return nil }
            defer { b += 1 }
            return try! Tensor.stack(order[(b * batchSize)..<((b + 1) * batchSize)].map { images[$0] }, dim: 0)
        }
    }
}

final class TrainerResumeTests: XCTestCase {
    func tinyArch() -> SpaceArch {
        var a = SpaceArch(); a.G = 4; a.K = 2; a.tauEndStep = 20; a.zPresStartStep = 2; a.zPresEndStep = 8; a.fixAlphaSteps = 3
        return a
    }

    func makeTrainer(dir: String, maxSteps: Int, fgSchedule: LearningRateSchedule? = nil) throws -> Trainer {
        ParameterInit.reseed(5)
        let model = try Space(arch: tinyArch())
        let rng = SeededNoise(seed: 9)
        let data = MemoryBatches(images: (0..<6).map { _ in rng.uniform([3, 128, 128]) }, batchSize: 2, seed: 3)
        var s = TrainingSettings()
        s.expName = "tiny"; s.seed = 4; s.maxSteps = maxSteps; s.printEvery = 100; s.saveEvery = 2
        s.checkpointDirectory = dir; s.maxCheckpoints = 3
        s.fgSchedule = fgSchedule
        var hooks = TrainerHooks(); hooks.print = { _ in }
        return try Trainer(model: model, data: data, settings: s, configYAML: "seed: 4\n", hooks: hooks)
    }

    /// Train 7 steps straight; separately train, stop after 5 steps (last checkpoint at step 4, mid-epoch 2),
    /// resume: the resumed run repeats step 5 onwards with the same losses, and ends with the same weights
    /// and optimizer state as the uninterrupted run.
    func testResumeContinuesLikeAnUninterruptedRun() throws {
        let base = NSTemporaryDirectory() + "/space-resume-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let straight = try makeTrainer(dir: base + "/a", maxSteps: 6)
        try straight.run()
        XCTAssertEqual(straight.losses.map { $0.step }, Array(0...6))

        let first = try makeTrainer(dir: base + "/b", maxSteps: 6)
        try first.run(stopAfter: 5)
        XCTAssertEqual(first.losses.map { $0.step }, Array(0...4))
        let second = try makeTrainer(dir: base + "/b", maxSteps: 6)
        try second.run()
        XCTAssertEqual(second.losses.map { $0.step }, [5, 6], "the resumed run continues at the step after the checkpoint")
        XCTAssertEqual(second.epoch, straight.epoch)

        let a = straight.losses.map { $0.loss }, b = (first.losses + second.losses).map { $0.loss }
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: abs(x) * 1e-6, "loss curve") }
        let pa = straight.model.stateDict(), pb = second.model.stateDict()
        for (k, v) in pa { XCTAssertEqual(v.tensor?.array, pb[k]?.tensor?.array, k) }
        let oa = straight.bgOptimizer.stateDict(), ob = second.bgOptimizer.stateDict()
        XCTAssertEqual(Set(oa.keys), Set(ob.keys))
        for (k, v) in oa { XCTAssertEqual(v.array, ob[k]?.array, k) }
        XCTAssertEqual(straight.fgOptimizer.stateDict()["fg_module.img_encoder.enc.0.weight.step"]?.array, [7])
    }

    /// A learning-rate schedule is applied at every step from the global step: after the run the rate is
    /// the schedule's end value, and the weights differ from those of a run at the constant start rate.
    func testLearningRateScheduleFollowsTheStep() throws {
        let base = NSTemporaryDirectory() + "/space-lr-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let schedule = LearningRateSchedule(start: 1e-5, end: 1e-3, startStep: 0, endStep: 2)
        XCTAssertEqual(schedule.value(at: 0), 1e-5)
        XCTAssertEqual(schedule.value(at: 1), 5.05e-4, accuracy: 1e-9)
        XCTAssertEqual(schedule.value(at: 7), 1e-3)
        let scheduled = try makeTrainer(dir: base + "/a", maxSteps: 2, fgSchedule: schedule)
        try scheduled.run()
        XCTAssertEqual(scheduled.fgOptimizer.learningRate, 1e-3)
        let constant = try makeTrainer(dir: base + "/b", maxSteps: 2)
        try constant.run()
        XCTAssertEqual(constant.fgOptimizer.learningRate, 1e-5)
        let w = "fg_module.z_what_net.enc_cnn.0.weight"
        let a = try XCTUnwrap(scheduled.model.stateDict()[w]?.tensor?.array), b = try XCTUnwrap(constant.model.stateDict()[w]?.tensor?.array)
        XCTAssertEqual(scheduled.losses.first?.loss, constant.losses.first?.loss, "step 0 runs at the same rate")
        XCTAssertGreaterThan(zip(a, b).map { abs($0 - $1) }.max() ?? 0, 1e-4)
    }
}
