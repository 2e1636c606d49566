import ArgumentParser
import Foundation
import SpaceCore
import SpaceData
import SpaceEval
import SpaceModels
import SpaceTrain

/// `space train --config FILE [KEY VALUE ...]`: trains as the reference's `main.py --task train` does.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train SPACE from a YAML config, with trailing KEY VALUE overrides (e.g. train.batch_size 8 arch.G 8).")

    @Option(help: "YAML config (e.g. configs/atari_spaceinvaders.yaml).") var config: String?
    @Argument(parsing: .captureForPassthrough, help: "KEY VALUE overrides, as on the reference's command line.") var overrides: [String] = []

    func run() throws {
        let exp = try Experiment.load(configFile: config, overrides: overrides)
        let cfg = exp.config
        print("Experiment name: \(exp.expName)\nDataset: \(cfg.dataset)\nModel name: \(cfg.model)\nResume: \(cfg.resume)")
        print("OpenBLAS core: \(BLASRuntime.coreName), threads: \(BLASRuntime.threads)")
        let trainSet = try exp.dataset(.train)
        guard trainSet.count >= cfg.train.batchSize else {
            throw SpaceError.message("the training split has \(trainSet.count) images, fewer than train.batch_size \(cfg.train.batchSize)")
        }
        print("Training images: \(trainSet.count)")
        let model = try exp.makeModel()

        // The resolved config lives beside the checkpoints; on resume, say what differs.
        let fm = FileManager.default
        try fm.createDirectory(atPath: exp.checkpointDirectory, withIntermediateDirectories: true)
        let configPath = (exp.checkpointDirectory as NSString).appendingPathComponent("config.yaml")
        if cfg.resume, let old = fm.contents(atPath: configPath), let text = String(data: old, encoding: .utf8),
           let previous = try? SpaceConfig().merging(yaml: text, source: configPath) {
            let diff = cfg.differences(from: previous)
            if !diff.isEmpty {
                print("Config differs from the saved one (\(configPath)):")
                for d in diff { print("  \(d.key): \(d.old) -> \(d.new)") }
            }
        }
        try atomicWrite(Data(cfg.yamlString().utf8), to: configPath)

        let logger = try TrainingLogger(directory: exp.logDirectory)
        var hooks = TrainerHooks()
        hooks.log = { step, images, out, scalars in
            try logger.scalars(Dictionary(uniqueKeysWithValues: scalars.map { ("train/" + $0.key, $0.value) }), step: step)
            try logger.image("train/decomposition", try DecompositionPicture(scale: 1).render(images: images, output: out, count: 4), step: step)
        }
        if cfg.train.evalOn {
            let valSet = try exp.dataset(.val)
            let source = DatasetEvaluationSource(dataset: valSet)
            let evaluator = Evaluator(batchSize: cfg.evalCfg.train.batchSize, seed: UInt64(truncatingIfNeeded: cfg.seed))
            hooks.evaluate = { step in
                print("Validating...")
                let t0 = Date()
                let nAP = min(cfg.evalCfg.train.numSamples.ap, valSet.count), nMSE = min(cfg.evalCfg.train.numSamples.mse, valSet.count)
                var metrics: [String: Double] = [:]
                if cfg.evalCfg.train.metrics.contains("ap") {
                    let r = try evaluator.evaluate(model: model, source: source, indices: Array(0..<nAP))
                    metrics.merge(r.metrics) { a, _ in a }
                }
                if cfg.evalCfg.train.metrics.contains("mse") {
                    let r = try evaluator.evaluate(model: model, source: source, indices: Array(0..<nMSE))
                    metrics["mse"] = r.mse
                }
                try logger.scalars(Dictionary(uniqueKeysWithValues: metrics.map { ("val/" + $0.key, $0.value) }), step: step)
                print(metrics.keys.sorted().map { String(format: "%@: %.4f", $0, metrics[$0]!) }.joined(separator: ", ")
                      + String(format: " (%.1fs)", Date().timeIntervalSince(t0)))
                return metrics
            }
        }
        let data = LoaderBatches(dataset: trainSet, batchSize: cfg.train.batchSize, seed: UInt64(truncatingIfNeeded: cfg.seed),
                                 workers: cfg.train.numWorkers)
        let trainer = try Trainer(model: model, data: data, settings: exp.trainingSettings, configYAML: cfg.yamlString(), hooks: hooks)
        print("Start training")
        try trainer.run()
        try logger.close()
        print("Checkpoints: \(exp.checkpointDirectory)")
        print("Logs:        \(exp.logDirectory)  (tensorboard --logdir \(exp.logDirectory), or scalars.csv there)")
    }
}
