import Foundation
import SpaceModels

/// The whole configuration of a SPACE run, with the reference's key names and defaults (its
/// `src/config.py`, `eval/eval_cfg.py` and `model/space/arch.py`), so its YAML files and its
/// `KEY VALUE` command-line overrides work unchanged.
///
/// One difference from the reference: `device` defaults to `'cpu'` (the reference says `'cuda:0'`),
/// because this build runs on the CPU; `validate()` refuses any other device.
///
/// Paths (`logdir`, `checkpointdir`, `evaldir`, `demodir`, `dataset_roots.*`) are used as written:
/// relative paths resolve against the current working directory (the reference's are relative to its
/// `src/` folder, hence its `../output/...` defaults). The configs shipped in `configs/` use
/// `output/...` and `data/...`, for running `space` from the repository root.
///
/// Build one with `SpaceConfig.load(configFile:overrides:)` (defaults, then the file, then overrides);
/// `yamlString()` prints it back and `differences(from:)` lists what changed.
public struct SpaceConfig: Codable, Equatable, Sendable {
    public var seed: Int = 8848
    /// The run's name; empty means "the config file's name" (see `load(configFile:overrides:)`).
    public var expName: String = ""
    public var model: String = "SPACE"
    /// Resume training from a checkpoint.
    public var resume: Bool = true
    /// The checkpoint to resume from; empty means the last one in `checkpointdir/exp_name`.
    public var resumeCkpt: String = ""
    /// Several GPUs in the reference; this build refuses `True` (see `validate()`).
    public var parallel: Bool = false
    public var deviceIds: [Int] = [0, 1]
    /// Always `cpu` in this build (the reference's default is `cuda:0`).
    public var device: String = "cpu"
    public var logdir: String = "../output/logs/"
    public var checkpointdir: String = "../output/checkpoints/"
    public var evaldir: String = "../output/eval/"
    public var demodir: String = "../output/demo/"
    /// Which dataset to use: a key of `dataset_roots`.
    public var dataset: String = "OBJ3D_LARGE"
    public var datasetRoots = DatasetRoots()
    /// Atari games to use (the reference's ten by default).
    public var gamelist: [String] = [
        "Atlantis-v0", "Asterix-v0", "Carnival-v0", "DoubleDunk-v0", "Kangaroo-v0",
        "MontezumaRevenge-v0", "MsPacman-v0", "Pooyan-v0", "Qbert-v0", "SpaceInvaders-v0",
    ]
    public var train = Train()
    public var eval = Eval()
    public var show = Show()
    public var arch = SpaceArch()
    public var evalCfg = EvalCfg()

    public init() {}

    enum CodingKeys: String, CodingKey {
        case seed, expName = "exp_name", model, resume, resumeCkpt = "resume_ckpt", parallel
        case deviceIds = "device_ids", device, logdir, checkpointdir, evaldir, demodir
        case dataset, datasetRoots = "dataset_roots", gamelist, train, eval, show, arch, evalCfg = "eval_cfg"
    }

    /// `dataset_roots`: where each dataset lives.
    public struct DatasetRoots: Codable, Equatable, Sendable {
        public var ATARI: String = "../data/ATARI"
        public var OBJ3D_LARGE: String = "../data/OBJ3D_LARGE"
        public var OBJ3D_SMALL: String = "../data/OBJ3D_SMALL"

        public init() {}

        /// The root of the dataset called `name`, or nil for a name this section does not have.
        public subscript(name: String) -> String? {
            switch name {
            case "ATARI": return ATARI
            case "OBJ3D_LARGE": return OBJ3D_LARGE
            case "OBJ3D_SMALL": return OBJ3D_SMALL
            default: return nil
            }
        }
    }

    /// `train`: the training loop.
    public struct Train: Codable, Equatable, Sendable {
        public var batchSize: Int = 16
        public var maxEpochs: Int = 1000
        public var maxSteps: Int = 1_000_000
        public var numWorkers: Int = 4
        /// Gradient clipping by global norm; 0 turns it off.
        public var clipNorm: Double = 1.0
        /// How many checkpoints to keep.
        public var maxCkpt: Int = 5
        public var printEvery: Int = 500
        public var saveEvery: Int = 1000
        public var evalOn: Bool = true
        public var evalEvery: Int = 1000
        public var solver = Solver()

        public init() {}

        enum CodingKeys: String, CodingKey {
            case batchSize = "batch_size", maxEpochs = "max_epochs", maxSteps = "max_steps", numWorkers = "num_workers"
            case clipNorm = "clip_norm", maxCkpt = "max_ckpt", printEvery = "print_every", saveEvery = "save_every"
            case evalOn = "eval_on", evalEvery = "eval_every", solver
        }
    }

    /// `train.solver`: one optimizer for the foreground module, one for the background module.
    public struct Solver: Codable, Equatable, Sendable {
        public var fg = OptimizerSetting(optim: "RMSprop", lr: 1e-5)
        public var bg = OptimizerSetting(optim: "Adam", lr: 1e-3)

        public init() {}
    }

    /// `train.solver.fg` / `train.solver.bg`: an optimizer name (`RMSprop` or `Adam`) and its learning rate.
    /// Not in the reference: with `lr_end` > 0 the learning rate goes linearly from `lr` (up to step
    /// `lr_start_step`) to `lr_end` (from step `lr_end_step` on), like the arch's annealed priors; with
    /// `lr_end` 0 (the default) it stays `lr`, as in the reference.
    public struct OptimizerSetting: Codable, Equatable, Sendable {
        public var optim: String
        public var lr: Double
        public var lrEnd: Double = 0
        public var lrStartStep: Int = 0
        public var lrEndStep: Int = 0

        public init(optim: String, lr: Double) { self.optim = optim; self.lr = lr }

        enum CodingKeys: String, CodingKey {
            case optim, lr, lrEnd = "lr_end", lrStartStep = "lr_start_step", lrEndStep = "lr_end_step"
        }

        /// The learning rate as a function of the step.
        public var schedule: LearningRateSchedule {
            LearningRateSchedule(start: Float(lr), end: lrEnd > 0 ? Float(lrEnd) : Float(lr), startStep: lrStartStep, endStep: lrEndStep)
        }
    }

    /// `eval`: which checkpoint `eval` loads and by which metric "best" is judged.
    public struct Eval: Codable, Equatable, Sendable {
        /// `best` or `last`.
        public var checkpoint: String = "best"
        /// `ap_dot5` or `ap_avg`.
        public var metric: String = "ap_avg"

        public init() {}
    }

    /// `show`: which images `show` draws.
    public struct Show: Codable, Equatable, Sendable {
        /// `val` or `test`.
        public var mode: String = "val"
        /// Indices into that split.
        public var indices: [Int] = [0, 1, 2, 3]

        public init() {}
    }

    /// `eval_cfg`: evaluation during training (`train`) and by the `eval` task (`test`).
    public struct EvalCfg: Codable, Equatable, Sendable {
        public var train = During()
        public var test = Test()

        public init() {}

        /// `eval_cfg.train`.
        public struct During: Codable, Equatable, Sendable {
            /// Any of `mse`, `ap`.
            public var metrics: [String] = ["mse", "ap"]
            public var numSamples = NumSamples()
            public var batchSize: Int = 12
            public var numWorkers: Int = 4

            public init() {}

            enum CodingKeys: String, CodingKey {
                case metrics, numSamples = "num_samples", batchSize = "batch_size", numWorkers = "num_workers"
            }
        }

        /// `eval_cfg.train.num_samples`: how many validation images each metric uses.
        public struct NumSamples: Codable, Equatable, Sendable {
            public var mse: Int = 200
            public var ap: Int = 200

            public init() {}
        }

        /// `eval_cfg.test`.
        public struct Test: Codable, Equatable, Sendable {
            public var batchSize: Int = 12
            public var numWorkers: Int = 4

            public init() {}

            enum CodingKeys: String, CodingKey { case batchSize = "batch_size", numWorkers = "num_workers" }
        }
    }
}
