import XCTest
import SpaceCore
import SpaceData
import SpaceModels
@testable import SpaceTrain

/// Every shipped config builds its model and runs one training step on generated scenes.
final class ShippedConfigTests: XCTestCase {
    static let configs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("configs")

    func testEveryShippedConfigTrainsOneStep() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.configs.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(files, ["3d_room_large.yaml", "3d_room_small.yaml", "atari_joint.yaml", "atari_riverraid.yaml",
                               "atari_spaceinvaders.yaml", "demo.yaml"])
        let generator = SceneGenerator(seed: 1)
        let images = (0..<2).map { ImagePreprocessing.tensor(from: generator.render(index: $0).image) }
        for file in files {
            let cfg = try SpaceConfig.load(configFile: Self.configs.appendingPathComponent(file).path,
                                           overrides: ["train.batch_size", "2", "resume", "False"])
            try cfg.validate()
            let model = try ModelRegistry.make(cfg.model, arch: cfg.arch)
            var s = TrainingSettings()
            s.maxSteps = 0; s.printEvery = 1; s.saveEvery = 1000; s.resume = false
            s.checkpointDirectory = NSTemporaryDirectory() + "/space-cfg-\(UUID().uuidString)"
            s.fgOptimizer = (cfg.train.solver.fg.optim, Float(cfg.train.solver.fg.lr))
            s.bgOptimizer = (cfg.train.solver.bg.optim, Float(cfg.train.solver.bg.lr))
            defer { try? FileManager.default.removeItem(atPath: s.checkpointDirectory) }
            var hooks = TrainerHooks(); hooks.print = { _ in }
            var logged: [String: Double] = [:]
            hooks.log = { _, _, _, scalars in logged = scalars }
            let before = model.namedParameters().first!.1.clone()
            let trainer = try Trainer(model: model, data: MemoryBatches(images: images, batchSize: 2, seed: 0),
                                      settings: s, configYAML: cfg.yamlString(), hooks: hooks)
            try trainer.run()
            XCTAssertEqual(trainer.losses.count, 1, file)
            XCTAssertTrue(trainer.losses[0].loss.isFinite, file)
            XCTAssertNotEqual(model.namedParameters().first!.1.array, before.array, "\(file): parameters did not move")
            XCTAssertEqual(logged["tau"].map { Float($0) }, cfg.arch.tauStartValue, file)
        }
    }
}
