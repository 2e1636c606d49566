import ArgumentParser
import Foundation
import SpaceCore
import SpaceData
import SpaceEval
import SpaceModels
import SpaceTrain

/// What `train`, `eval` and `show` share: the resolved config, its folders, the model and the data.
struct Experiment {
    let config: SpaceConfig

    /// Loads defaults, the YAML file and the overrides; a config error exits with status 2 and writes nothing.
    static func load(configFile: String?, overrides: [String]) throws -> Experiment {
        do {
            let cfg = try SpaceConfig.load(configFile: configFile, overrides: overrides)
            try cfg.validate()
            return Experiment(config: cfg)
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(ConfigError.exitCode)
        }
    }

    var expName: String { config.expName.isEmpty ? "space" : config.expName }
    var checkpointDirectory: String { (SpaceConfig.absolutePath(config.checkpointdir) as NSString).appendingPathComponent(expName) }
    var logDirectory: String { (SpaceConfig.absolutePath(config.logdir) as NSString).appendingPathComponent(expName) }
    var evalDirectory: String { (SpaceConfig.absolutePath(config.evaldir) as NSString).appendingPathComponent(expName) }
    var demoDirectory: String { SpaceConfig.absolutePath(config.demodir) }

    func makeModel() throws -> SceneModel { try ModelRegistry.make(config.model, arch: config.arch) }

    /// The dataset split named by the config (`dataset`, `dataset_roots`, `gamelist`).
    func dataset(_ split: DatasetSplit) throws -> any SceneDataset {
        guard let root = config.datasetRoots[config.dataset] else {
            throw SpaceError.argument(op: "dataset", message: "no dataset_roots entry for dataset '\(config.dataset)'")
        }
        let options = DatasetOptions(root: SpaceConfig.absolutePath(root), split: split,
                                     gamelist: config.dataset == "ATARI" ? config.gamelist : nil,
                                     preprocessing: ImagePreprocessing(size: config.arch.imgShape[0]))
        return try DatasetRegistry.make(config.dataset, options: options)
    }

    var trainingSettings: TrainingSettings {
        var s = TrainingSettings()
        s.expName = expName
        s.seed = config.seed
        s.maxEpochs = config.train.maxEpochs
        s.maxSteps = config.train.maxSteps
        s.clipNorm = Float(config.train.clipNorm)
        s.maxCheckpoints = config.train.maxCkpt
        s.printEvery = config.train.printEvery
        s.saveEvery = config.train.saveEvery
        s.evalOn = config.train.evalOn
        s.evalEvery = config.train.evalEvery
        s.fgOptimizer = (config.train.solver.fg.optim, Float(config.train.solver.fg.lr))
        s.bgOptimizer = (config.train.solver.bg.optim, Float(config.train.solver.bg.lr))
        s.fgSchedule = config.train.solver.fg.schedule
        s.bgSchedule = config.train.solver.bg.schedule
        s.checkpointDirectory = checkpointDirectory
        s.resume = config.resume
        s.resumeCheckpoint = config.resumeCkpt.isEmpty ? "" : SpaceConfig.absolutePath(config.resumeCkpt)
        return s
    }
}

/// Training batches from a dataset: shuffled per epoch from the seed, decoded ahead on worker threads,
/// the last incomplete batch dropped (so every step sees a full batch).
struct LoaderBatches: EpochBatches {
    let dataset: any SceneDataset
    let batchSize: Int
    let seed: UInt64
    let workers: Int

    var batchesPerEpoch: Int { dataset.count / batchSize }

    func batches(epoch: Int, skip: Int) throws -> AnyIterator<Tensor> {
        let loader = try DataLoader(dataset: dataset, batchSize: batchSize, shuffle: true, seed: seed, epoch: epoch,
                                    workers: workers, dropLast: true)
        let it = loader.batches(from: skip)
        // A batch whose every image failed to decode has no rows: the loader has warned; move on.
        return AnyIterator {
            while let batch = it.next() {
                if !batch.indices.isEmpty { return batch.images }
            }
            return nil
        }
    }
}

/// A dataset split as an evaluation source (ground truth in the reference's normalised corners).
struct DatasetEvaluationSource: EvaluationSource {
    let dataset: any SceneDataset
    var count: Int { dataset.count }
    func images(_ indices: [Int]) throws -> Tensor { try Tensor.stack(indices.map { try dataset.image(at: $0) }, dim: 0) }
    func groundTruth(_ index: Int) throws -> [DetectionBox]? {
        guard dataset.hasBoxes, let boxes = try dataset.boxes(at: index) else { return nil }
        let size = Double(dataset.imageSize)
        return boxes.map { b in
            let (cx, cy, w, h) = (Double(b[0]), Double(b[1]), Double(b[2]), Double(b[3]))
            return DetectionBox(yMin: (cy - h / 2) / size, yMax: (cy + h / 2) / size, xMin: (cx - w / 2) / size, xMax: (cx + w / 2) / size)
        }
    }
}
