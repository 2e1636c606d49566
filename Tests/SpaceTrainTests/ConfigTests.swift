import Foundation
import XCTest
import SpaceModels
@testable import SpaceTrain

/// The config system: defaults pinned to the reference (src/config.py, eval/eval_cfg.py,
/// model/space/arch.py), the shipped configs, overrides, errors, and saving.
final class ConfigTests: XCTestCase {
    /// The repository's `configs/` folder, found from this file's location.
    static let configsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("configs")

    static let shippedConfigs = ["3d_room_large", "3d_room_small", "atari_spaceinvaders", "atari_riverraid", "atari_joint", "demo"]

    func config(_ name: String, _ overrides: [String] = []) throws -> SpaceConfig {
        try SpaceConfig.load(configFile: Self.configsDirectory.appendingPathComponent(name + ".yaml").path, overrides: overrides)
    }

    /// Runs `body`, expecting a `ConfigError`, and returns it.
    func configError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> ConfigError? {
        do { try body() } catch let e as ConfigError { return e } catch {
            XCTFail("expected a ConfigError, got \(error)", file: file, line: line); return nil
        }
        XCTFail("expected a ConfigError, nothing was thrown", file: file, line: line)
        return nil
    }

    func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("space-config-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    // MARK: Defaults

    func testDefaultsEqualTheReference() {
        let c = SpaceConfig()
        XCTAssertEqual(c.seed, 8848)
        XCTAssertEqual(c.expName, "")
        XCTAssertEqual(c.model, "SPACE")
        XCTAssertTrue(c.resume)
        XCTAssertEqual(c.resumeCkpt, "")
        XCTAssertFalse(c.parallel)
        XCTAssertEqual(c.deviceIds, [0, 1])
        XCTAssertEqual(c.device, "cpu", "the reference says cuda:0; this build runs on the CPU")
        XCTAssertEqual(c.logdir, "../output/logs/")
        XCTAssertEqual(c.checkpointdir, "../output/checkpoints/")
        XCTAssertEqual(c.evaldir, "../output/eval/")
        XCTAssertEqual(c.demodir, "../output/demo/")
        XCTAssertEqual(c.dataset, "OBJ3D_LARGE")
        XCTAssertEqual(c.datasetRoots.ATARI, "../data/ATARI")
        XCTAssertEqual(c.datasetRoots.OBJ3D_LARGE, "../data/OBJ3D_LARGE")
        XCTAssertEqual(c.datasetRoots.OBJ3D_SMALL, "../data/OBJ3D_SMALL")
        XCTAssertEqual(c.gamelist, ["Atlantis-v0", "Asterix-v0", "Carnival-v0", "DoubleDunk-v0", "Kangaroo-v0",
                                    "MontezumaRevenge-v0", "MsPacman-v0", "Pooyan-v0", "Qbert-v0", "SpaceInvaders-v0"])

        XCTAssertEqual(c.train.batchSize, 16)
        XCTAssertEqual(c.train.maxEpochs, 1000)
        XCTAssertEqual(c.train.maxSteps, 1_000_000)
        XCTAssertEqual(c.train.numWorkers, 4)
        XCTAssertEqual(c.train.clipNorm, 1.0)
        XCTAssertEqual(c.train.maxCkpt, 5)
        XCTAssertEqual(c.train.printEvery, 500)
        XCTAssertEqual(c.train.saveEvery, 1000)
        XCTAssertTrue(c.train.evalOn)
        XCTAssertEqual(c.train.evalEvery, 1000)
        XCTAssertEqual(c.train.solver.fg, .init(optim: "RMSprop", lr: 1e-5))
        XCTAssertEqual(c.train.solver.bg, .init(optim: "Adam", lr: 1e-3))

        XCTAssertEqual(c.eval.checkpoint, "best")
        XCTAssertEqual(c.eval.metric, "ap_avg")
        XCTAssertEqual(c.show.mode, "val")
        XCTAssertEqual(c.show.indices, [0, 1, 2, 3])

        XCTAssertEqual(c.evalCfg.train.metrics, ["mse", "ap"])
        XCTAssertEqual(c.evalCfg.train.numSamples.mse, 200)
        XCTAssertEqual(c.evalCfg.train.numSamples.ap, 200)
        XCTAssertEqual(c.evalCfg.train.batchSize, 12)
        XCTAssertEqual(c.evalCfg.train.numWorkers, 4)
        XCTAssertEqual(c.evalCfg.test.batchSize, 12)
        XCTAssertEqual(c.evalCfg.test.numWorkers, 4)

        XCTAssertEqual(c.arch, SpaceArch())
        XCTAssertEqual(c.arch.G, 8)
        XCTAssertEqual(c.arch.K, 5)
        XCTAssertEqual(c.arch.imgShape, [128, 128])
        XCTAssertEqual(c.arch.blOffStep, 100_000_000)
        XCTAssertNoThrow(try c.validate())
    }

    func testLearningRateScheduleKeys() throws {
        let c = try SpaceConfig().merging(yaml: "train:\n  solver:\n    fg:\n      lr: 3e-4\n      lr_end: 3e-5\n      lr_start_step: 800\n      lr_end_step: 1200\n")
        XCTAssertNoThrow(try c.validate())
        XCTAssertEqual(c.train.solver.fg.schedule, LearningRateSchedule(start: 3e-4, end: 3e-5, startStep: 800, endStep: 1200))
        XCTAssertEqual(c.train.solver.bg.schedule.value(at: 5000), 1e-3, "lr_end 0: the constant lr, as the reference")
        var bad = c
        bad.train.solver.fg.lrEndStep = 700
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("train.solver.fg.lr_end_step"), "\($0)") }
        bad = c
        bad.train.solver.bg.lrEnd = -1
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("train.solver.bg.lr_end"), "\($0)") }
    }

    func testKeysKeepTheReferenceNamesAndOrder() {
        let keys = SpaceConfig.allKeys
        XCTAssertEqual(Array(keys.prefix(17)), [
            "seed", "exp_name", "model", "resume", "resume_ckpt", "parallel", "device_ids", "device",
            "logdir", "checkpointdir", "evaldir", "demodir", "dataset",
            "dataset_roots.ATARI", "dataset_roots.OBJ3D_LARGE", "dataset_roots.OBJ3D_SMALL", "gamelist",
        ])
        XCTAssertEqual(keys.filter { $0.hasPrefix("train.") }, [
            "train.batch_size", "train.max_epochs", "train.max_steps", "train.num_workers", "train.clip_norm",
            "train.max_ckpt", "train.print_every", "train.save_every", "train.eval_on", "train.eval_every",
            "train.solver.fg.optim", "train.solver.fg.lr", "train.solver.fg.lr_end", "train.solver.fg.lr_start_step",
            "train.solver.fg.lr_end_step", "train.solver.bg.optim", "train.solver.bg.lr", "train.solver.bg.lr_end",
            "train.solver.bg.lr_start_step", "train.solver.bg.lr_end_step",
        ])
        XCTAssertEqual(keys.filter { $0.hasPrefix("eval_cfg.") }, [
            "eval_cfg.train.metrics", "eval_cfg.train.num_samples.mse", "eval_cfg.train.num_samples.ap",
            "eval_cfg.train.batch_size", "eval_cfg.train.num_workers", "eval_cfg.test.batch_size", "eval_cfg.test.num_workers",
        ])
        let arch = keys.filter { $0.hasPrefix("arch.") }
        XCTAssertEqual(arch.count, 35)
        XCTAssertEqual(arch.first, "arch.img_shape")
        XCTAssertEqual(arch.last, "arch.predict_comp_hidden_dim")
        // Sections in the reference's order: arch and eval_cfg are attached after the rest.
        let sections = keys.compactMap { $0.split(separator: ".").first.map(String.init) }
            .reduce(into: [String]()) { if $0.last != $1 { $0.append($1) } }
        XCTAssertEqual(Array(sections.suffix(5)), ["train", "eval", "show", "arch", "eval_cfg"])
    }

    // MARK: Shipped configs

    func testEveryShippedConfigLoadsAndValidates() throws {
        for name in Self.shippedConfigs {
            let c = try config(name)
            XCTAssertEqual(c.expName, name, name)
            XCTAssertEqual(c.device, "cpu", name)
            XCTAssertNoThrow(try c.validate(), name)
            for path in [c.logdir, c.checkpointdir, c.evaldir, c.demodir, c.datasetRoots.ATARI, c.datasetRoots.OBJ3D_LARGE, c.datasetRoots.OBJ3D_SMALL] {
                XCTAssertTrue(path.hasPrefix("output/") || path.hasPrefix("data/"), "\(name): \(path) is not relative to the repository root")
            }
            XCTAssertNotNil(c.datasetRoot, name)
        }
    }

    func testAtariSpaceInvadersHasTheReferenceValues() throws {
        let c = try config("atari_spaceinvaders")
        XCTAssertEqual(c.seed, 1)
        XCTAssertEqual(c.dataset, "ATARI")
        XCTAssertEqual(c.datasetRoot, "data/ATARI")
        XCTAssertEqual(c.gamelist, ["SpaceInvaders-v0"])
        XCTAssertEqual(c.train.batchSize, 12)
        XCTAssertEqual(c.train.maxSteps, 100_000)
        XCTAssertEqual(c.train.maxCkpt, 4)
        XCTAssertFalse(c.train.evalOn)
        XCTAssertEqual(c.train.evalEvery, 1000, "not set by the file: the default")
        XCTAssertEqual(c.train.solver.fg, .init(optim: "RMSprop", lr: 1e-5))
        XCTAssertEqual(c.train.solver.bg, .init(optim: "Adam", lr: 1e-3))
        XCTAssertEqual(c.arch.G, 16)
        XCTAssertEqual(c.arch.K, 3)
        XCTAssertEqual(c.arch.fgSigma, 0.20)
        XCTAssertEqual(c.arch.bgSigma, 0.10)
        XCTAssertEqual(c.arch.zScaleMeanStartValue, -2.2)
        XCTAssertEqual(c.arch.zScaleMeanEndValue, -2.5)
        XCTAssertEqual(c.arch.zScaleStdValue, 0.2)
        XCTAssertEqual(c.arch.tauEndStep, 20000)
        XCTAssertEqual(c.arch.tauEndValue, 0.1)
        XCTAssertEqual(c.arch.fixAlphaSteps, 2000)
        XCTAssertEqual(c.arch.fixAlphaValue, 0.2)
        XCTAssertFalse(c.arch.boundaryLoss)
        XCTAssertEqual(c.arch.blOffStep, 100_000_000, "not set by the file: the default")
    }

    func testAtariRiverraidAndJointHaveTheReferenceValues() throws {
        let r = try config("atari_riverraid")
        XCTAssertEqual(r.seed, 3)
        XCTAssertEqual(r.deviceIds, [4, 5, 6, 7])
        XCTAssertEqual(r.gamelist, ["Riverraid-v0"])
        XCTAssertEqual(r.arch.K, 4)
        XCTAssertEqual(r.arch.fixAlphaSteps, 4000)
        XCTAssertEqual(r.arch.fixAlphaValue, 0.05)
        XCTAssertEqual(r.arch.zScaleMeanStartValue, -2.0)
        XCTAssertEqual(r.arch.zScaleStdValue, 0.1)
        XCTAssertEqual(r.arch.tauEndValue, 0.1)

        let j = try config("atari_joint")
        XCTAssertEqual(j.gamelist, SpaceConfig().gamelist)
        XCTAssertEqual(j.train.maxSteps, 160_000)
        XCTAssertEqual(j.arch.zPresStartStep, 10000)
        XCTAssertEqual(j.arch.zPresEndStep, 15000)
        XCTAssertEqual(j.arch.zPresEndValue, 1e-10)
        XCTAssertEqual(j.arch.tauEndStep, 10000)
        XCTAssertEqual(j.arch.tauEndValue, 2.5)
        XCTAssertEqual(j.arch.K, 3)
        XCTAssertEqual(j.evaldir, "output/eval")
    }

    func testRoomConfigsHaveTheReferenceValues() throws {
        let large = try config("3d_room_large")
        XCTAssertEqual(large.seed, 8848)
        XCTAssertEqual(large.dataset, "OBJ3D_LARGE")
        XCTAssertEqual(large.datasetRoot, "data/OBJ3D_LARGE")
        XCTAssertEqual(large.arch.G, 16)
        XCTAssertEqual(large.arch.K, 5)
        XCTAssertEqual(large.arch.tauEndValue, 0.5)
        XCTAssertTrue(large.arch.boundaryLoss)
        XCTAssertEqual(large.arch.blOffStep, 100_000)
        XCTAssertEqual(large.evalCfg.train.numSamples.mse, 100)
        XCTAssertEqual(large.evalCfg.train.numSamples.ap, 500)
        XCTAssertEqual(large.train.maxSteps, 160_000)
        XCTAssertEqual(large.eval.metric, "ap_avg")

        let small = try config("3d_room_small")
        XCTAssertEqual(small.seed, 1)
        XCTAssertEqual(small.dataset, "OBJ3D_SMALL")
        XCTAssertEqual(small.arch.G, 8)
        XCTAssertEqual(small.evalCfg.train.numSamples.mse, 200)
        XCTAssertEqual(small.evalCfg.train.numSamples.ap, 500)
    }

    func testDemoConfigTrainsInMinutesAndKeepsTheBestCounting() throws {
        let d = try config("demo")
        XCTAssertEqual(d.expName, "demo")
        XCTAssertEqual(d.dataset, "OBJ3D_SMALL")
        XCTAssertEqual(d.datasetRoot, "data/demo")
        XCTAssertEqual(d.arch.G, 8)
        XCTAssertEqual(d.arch.K, 2)
        XCTAssertEqual(d.train.batchSize, 4)
        XCTAssertEqual(d.train.maxSteps, 1500)
        XCTAssertEqual(d.train.printEvery, 50)
        XCTAssertEqual(d.train.saveEvery, 250)
        XCTAssertTrue(d.train.evalOn)
        XCTAssertEqual(d.train.evalEvery, 100)
        XCTAssertEqual(d.evalCfg.train.numSamples.mse, 16)
        XCTAssertEqual(d.evalCfg.train.numSamples.ap, 128)
        XCTAssertEqual(d.eval.checkpoint, "best")
        XCTAssertEqual(d.eval.metric, "error_rate")
        XCTAssertGreaterThan(d.arch.fgSigma, d.arch.bgSigma, "the authors' advice: bg_sigma below fg_sigma")
        // Every schedule ends by the last step.
        for end in [d.arch.zPresEndStep, d.arch.zScaleMeanEndStep, d.arch.tauEndStep, d.arch.fixAlphaSteps, d.arch.blOffStep] {
            XCTAssertLessThanOrEqual(end, d.train.maxSteps)
        }
    }

    // MARK: Values and overrides

    func testScientificFloatsParseAsFloats() throws {
        // PyYAML reads `1e-5` as a string and yacs literal_evals it to a float: we give the float.
        let c = try SpaceConfig().merging(yaml: "train:\n  solver:\n    fg:\n      lr: 1e-5\n    bg:\n      lr: 2E-3\narch:\n  z_pres_end_value: 1e-10\n")
        XCTAssertEqual(c.train.solver.fg.lr, 1e-5)
        XCTAssertEqual(c.train.solver.bg.lr, 2e-3)
        XCTAssertEqual(c.arch.zPresEndValue, 1e-10)
        XCTAssertEqual(SpaceConfig.parseFloat("1."), 1)
        XCTAssertEqual(SpaceConfig.parseFloat(".5"), 0.5)
        XCTAssertEqual(SpaceConfig.parseFloat("-2.5e+3"), -2500)
        XCTAssertEqual(SpaceConfig.parseFloat("1_000.5"), 1000.5)
        XCTAssertEqual(SpaceConfig.parseFloat("-.inf"), -.infinity)
        XCTAssertNil(SpaceConfig.parseFloat("1e"))
        XCTAssertNil(SpaceConfig.parseFloat("abc"))
        XCTAssertNil(SpaceConfig.parseFloat("inf"))
        XCTAssertEqual(SpaceConfig.parseInt("0x10"), 16)
        XCTAssertEqual(SpaceConfig.parseInt("-1_000"), -1000)
        XCTAssertNil(SpaceConfig.parseInt("8.0"))
        // An integer is accepted where a float is expected.
        XCTAssertEqual(try SpaceConfig().merging(yaml: "train:\n  clip_norm: 2\n").train.clipNorm, 2.0)
    }

    func testOverridesApply() throws {
        let c = try config("atari_spaceinvaders", ["resume", "True", "device", "cpu", "train.batch_size", "8", "arch.G", "8"])
        XCTAssertTrue(c.resume)
        XCTAssertEqual(c.device, "cpu")
        XCTAssertEqual(c.train.batchSize, 8)
        XCTAssertEqual(c.arch.G, 8)
        XCTAssertEqual(c.arch.K, 3, "untouched keys keep the file's values")

        let d = try SpaceConfig().merging(overrides: [
            "resume", "false", "parallel", "FALSE", "gamelist", "['Pong-v0']", "show.indices", "[0, 5000, 10000]",
            "device_ids", "[2, 3]", "arch.img_shape", "(64, 64)", "train.solver.fg.lr", "3e-4", "train.clip_norm", "0",
            "exp_name", "2", "resume_ckpt", "../pretrained/3d_room_large.pth", "device", "'cuda:0'",
            "eval_cfg.train.metrics", "[mse]", "arch.fg_sigma", "0.2", "dataset_roots.ATARI", "",
        ])
        XCTAssertFalse(d.resume)
        XCTAssertFalse(d.parallel)
        XCTAssertEqual(d.gamelist, ["Pong-v0"])
        XCTAssertEqual(d.show.indices, [0, 5000, 10000])
        XCTAssertEqual(d.deviceIds, [2, 3])
        XCTAssertEqual(d.arch.imgShape, [64, 64])
        XCTAssertEqual(d.train.solver.fg.lr, 3e-4)
        XCTAssertEqual(d.train.clipNorm, 0)
        XCTAssertEqual(d.expName, "2")
        XCTAssertEqual(d.resumeCkpt, "../pretrained/3d_room_large.pth")
        XCTAssertEqual(d.device, "cuda:0")
        XCTAssertEqual(d.evalCfg.train.metrics, ["mse"])
        XCTAssertEqual(d.arch.fgSigma, 0.2)
        XCTAssertEqual(d.datasetRoots.ATARI, "")
        // Lists replace lists in files too.
        XCTAssertEqual(try SpaceConfig().merging(yaml: "gamelist: []\n").gamelist, [])
    }

    func testExperimentNameComesFromTheConfigFile() throws {
        XCTAssertEqual(try config("3d_room_small", ["exp_name", "mine"]).expName, "mine")
        XCTAssertEqual(try SpaceConfig.load(configFile: nil, overrides: ["exp_name", "x"]).expName, "x")
        let e = configError { _ = try SpaceConfig.load(configFile: nil, overrides: []) }
        guard case .invalidValue(let key, _)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertEqual(key, "exp_name")
    }

    // MARK: Errors

    func testUnknownOverrideKeySuggestsTheClosestKey() {
        let e = configError { _ = try SpaceConfig().merging(overrides: ["train.batchsize", "8"]) }
        XCTAssertEqual(e, .unknownKey(key: "train.batchsize", suggestion: "train.batch_size", source: "command line"))
        XCTAssertEqual(e?.exitCode, 2)
        XCTAssertEqual(ConfigError.exitCode, 2)
        XCTAssertTrue(e?.description.contains("did you mean 'train.batch_size'?") ?? false, e?.description ?? "")
        XCTAssertEqual(SpaceConfig.closestKey(to: "batch_size"), "train.batch_size")
        XCTAssertEqual(SpaceConfig.closestKey(to: "arch.g"), "arch.G")
        XCTAssertEqual(SpaceConfig.closestKey(to: "arch.tau_end"), "arch.tau_end_step")
        XCTAssertEqual(SpaceConfig.closestKey(to: "train.solver.bg.lr_ned"), "train.solver.bg.lr_end")
    }

    func testWrongTypeNamesKeyTypeAndValue() {
        let e = configError { _ = try SpaceConfig().merging(overrides: ["train.batch_size", "abc"]) }
        XCTAssertEqual(e, .typeMismatch(key: "train.batch_size", expected: "an integer", value: "abc", source: "command line"))
        let text = e?.description ?? ""
        for part in ["train.batch_size", "an integer", "abc"] { XCTAssertTrue(text.contains(part), text) }

        for (key, value) in [("resume", "maybe"), ("arch.G", "8.5"), ("device_ids", "0"), ("gamelist", "[[a]]"),
                             ("train.solver.fg.lr", "fast"), ("train", "3")] {
            let err = configError { _ = try SpaceConfig().merging(overrides: [key, value]) }
            guard case .typeMismatch(let k, _, let v, _)? = err else { XCTFail("\(key) \(value): \(String(describing: err))"); continue }
            XCTAssertEqual(k, key)
            XCTAssertEqual(v, value)
        }
        let fileError = configError { _ = try SpaceConfig().merging(yaml: "arch:\n  K: three\n", source: "x.yaml") }
        XCTAssertEqual(fileError, .typeMismatch(key: "arch.K", expected: "an integer", value: "three", source: "x.yaml:2:6"))
    }

    func testOddNumberOfOverrideTokensIsAnError() {
        let e = configError { _ = try SpaceConfig().merging(overrides: ["train.batch_size", "8", "arch.G"]) }
        XCTAssertEqual(e, .oddOverrides(tokens: ["train.batch_size", "8", "arch.G"]))
    }

    func testUnknownKeyInYAMLFileNamesFileAndLine() throws {
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("bad_key.yaml")
        try "seed: 1\nbatch_size: 4\n".write(to: file, atomically: true, encoding: .utf8)
        let e = configError { _ = try SpaceConfig.load(configFile: file.path) }
        XCTAssertEqual(e, .unknownKey(key: "batch_size", suggestion: "train.batch_size", source: file.path + ":2:1"))

        let nested = configError { _ = try SpaceConfig().merging(yaml: "train:\n  solver:\n    fg:\n      optimizer: Adam\n", source: "n.yaml") }
        XCTAssertEqual(nested, .unknownKey(key: "train.solver.fg.optimizer", suggestion: "train.solver.fg.optim", source: "n.yaml:4:7"))
    }

    func testMalformedYAMLNamesFileAndLine() throws {
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("broken.yaml")
        try "seed: 1\ntrain:\n  batch_size: [1, 2\n  max_steps: 3\n".write(to: file, atomically: true, encoding: .utf8)
        let e = configError { _ = try SpaceConfig().merging(yamlFile: file.path) }
        guard case .malformedYAML(let source, let line, _, _)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertEqual(source, file.path)
        XCTAssertGreaterThanOrEqual(line, 3)
        XCTAssertTrue(e!.description.hasPrefix(file.path + ":\(line):"), e!.description)
        XCTAssertEqual(e?.exitCode, 2)

        let tabs = configError { _ = try SpaceConfig().merging(yaml: "seed: 1\n\tmodel: x\n", source: "t.yaml") }
        guard case .malformedYAML(_, let tabLine, _, _)? = tabs else { return XCTFail("\(String(describing: tabs))") }
        XCTAssertEqual(tabLine, 2)

        XCTAssertEqual(configError { _ = try SpaceConfig().merging(yaml: "- a\n- b\n", source: "l.yaml") },
                       .malformedYAML(source: "l.yaml", line: 1, column: 1, message: "the document must be a mapping of config keys, got [a, b]"))
        XCTAssertEqual(configError { _ = try SpaceConfig().merging(yaml: "seed: 1\nseed: 2\n", source: "d.yaml") },
                       .malformedYAML(source: "d.yaml", line: 2, column: 1, message: "duplicate key 'seed'"))
        let missing = configError { _ = try SpaceConfig().merging(yamlFile: dir.appendingPathComponent("none.yaml").path) }
        guard case .unreadableFile? = missing else { return XCTFail("\(String(describing: missing))") }
        // An empty file (or only comments) changes nothing.
        XCTAssertEqual(try SpaceConfig().merging(yaml: "# nothing\n"), SpaceConfig())
    }

    func testValidationRefusesCUDA() throws {
        for device in ["cuda:0", "cuda", "CUDA:1"] {
            let c = try config("demo", ["device", device])
            let e = configError { try c.validate() }
            guard case .invalidValue(let key, let message)? = e else { XCTFail("\(String(describing: e))"); continue }
            XCTAssertEqual(key, "device")
            XCTAssertTrue(message.contains("runs on CPU") && message.contains("device cpu"), message)
        }
        let parallel = configError { try SpaceConfig().merging(overrides: ["parallel", "True"]).validate() }
        guard case .invalidValue("parallel", _)? = parallel else { return XCTFail("\(String(describing: parallel))") }
        let metric = configError { try SpaceConfig().merging(overrides: ["eval.metric", "ap"]).validate() }
        guard case .invalidValue("eval.metric", _)? = metric else { return XCTFail("\(String(describing: metric))") }
        let grid = configError { try SpaceConfig().merging(overrides: ["arch.G", "5"]).validate() }
        guard case .invalidValue("arch.G", _)? = grid else { return XCTFail("\(String(describing: grid))") }
    }

    // MARK: Saving

    func testYAMLRoundTrip() throws {
        var configs = [SpaceConfig()]
        for name in Self.shippedConfigs { configs.append(try config(name)) }
        configs.append(try SpaceConfig().merging(overrides: ["exp_name", "it's \"quoted\"", "gamelist", "[]", "arch.fg_sigma", "0.1234567"]))
        for c in configs {
            let text = c.yamlString()
            XCTAssertEqual(try SpaceConfig().merging(yaml: text, source: "saved"), c, text)
            // Loading over other settings gives the same config: every key is written.
            XCTAssertEqual(try config("atari_joint").merging(yaml: text, source: "saved"), c)
        }
        let text = SpaceConfig().yamlString()
        XCTAssertTrue(text.hasPrefix("seed: 8848\nexp_name: ''\nmodel: 'SPACE'\nresume: true\n"), text)
        XCTAssertTrue(text.contains("\n      lr: 1.0e-05\n"), text)
        XCTAssertTrue(text.contains("\n  fg_sigma: 0.15\n"), text)
        XCTAssertTrue(text.contains("\ndevice_ids: [0, 1]\n"), text)
        XCTAssertTrue(text.contains("\n  img_shape: [128, 128]\n"), text)
        XCTAssertEqual(text.split(separator: "\n").filter { $0.contains(": ") }.count, SpaceConfig.allKeys.count)
    }

    func testDifferencesListChangedKeys() throws {
        let old = try config("3d_room_small")
        let new = try config("3d_room_small", ["train.batch_size", "8", "arch.tau_end_value", "0.25", "gamelist", "[Pong-v0]"])
        let diff = new.differences(from: old)
        XCTAssertEqual(diff.map(\.key), ["gamelist", "train.batch_size", "arch.tau_end_value"])
        XCTAssertEqual(diff[1].old, "12")
        XCTAssertEqual(diff[1].new, "8")
        XCTAssertEqual(diff[2].old, "0.5")
        XCTAssertEqual(diff[2].new, "0.25")
        XCTAssertEqual(diff[0].new, "['Pong-v0']")
        XCTAssertTrue(new.differences(from: new).isEmpty)
    }

    func testLoadingWritesNothing() throws {
        let dir = try temporaryDirectory()
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(dir.path))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        for name in Self.shippedConfigs {
            let c = try config(name, ["train.batch_size", "2"])
            try c.validate()
            _ = c.yamlString()
            XCTAssertEqual(SpaceConfig.absolutePath(c.logDirectory), dir.appendingPathComponent("output/logs/\(name)").standardizedFileURL.path)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    func testPaths() {
        var c = SpaceConfig()
        c.expName = "run"
        XCTAssertEqual(c.logDirectory, "../output/logs/run")
        XCTAssertEqual(c.demoImagePath, "../output/demo/run.png")
        c.checkpointdir = "output/checkpoints"
        XCTAssertEqual(c.checkpointDirectory, "output/checkpoints/run")
        XCTAssertEqual(SpaceConfig.absolutePath("../data/x", base: "/a/b/src"), "/a/b/data/x")
        XCTAssertEqual(SpaceConfig.absolutePath("/abs", base: "/a"), "/abs")
        XCTAssertEqual(c.datasetRoot, "../data/OBJ3D_LARGE")
    }
}
