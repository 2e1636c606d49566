import Foundation
import SpaceCore
import SpaceModels

/// What the training loop needs to know, read from the config's top level and `train` section.
public struct TrainingSettings: Sendable {
    public var expName = "space"
    public var seed = 8848
    public var maxEpochs = 1000
    public var maxSteps = 1_000_000
    public var clipNorm: Float = 1.0
    public var maxCheckpoints = 5
    public var printEvery = 500
    public var saveEvery = 1000
    public var evalOn = false
    public var evalEvery = 1000
    public var fgOptimizer = (name: "RMSprop", lr: Float(1e-5))
    public var bgOptimizer = (name: "Adam", lr: Float(1e-3))
    /// Learning rates by step (nil: the optimizers' own rate throughout).
    public var fgSchedule: LearningRateSchedule? = nil
    public var bgSchedule: LearningRateSchedule? = nil
    public var checkpointDirectory = "output/checkpoints/space"
    /// Resume from the last checkpoint in `checkpointDirectory`, or from `resumeCheckpoint` when set.
    public var resume = true
    public var resumeCheckpoint = ""
    public init() {}
}

/// A learning rate that goes linearly from `start` (up to `startStep`) to `end` (from `endStep` on).
public struct LearningRateSchedule: Equatable, Sendable {
    public var start: Float, end: Float
    public var startStep: Int, endStep: Int

    public init(start: Float, end: Float, startStep: Int, endStep: Int) {
        self.start = start; self.end = end; self.startStep = startStep; self.endStep = endStep
    }

    public func value(at step: Int) -> Float {
        linearAnnealing(step: step, startStep: startStep, endStep: endStep, startValue: start, endValue: end)
    }
}

/// A batch source: the batches of one epoch, in order, after skipping the first `skip` of them
/// (so a run resumed mid-epoch sees exactly the batches an uninterrupted run would).
public protocol EpochBatches {
    /// Batches per epoch.
    var batchesPerEpoch: Int { get }
    /// The images of each batch of `epoch` from batch index `skip` on: (B, 3, H, W) in [0, 1].
    func batches(epoch: Int, skip: Int) throws -> AnyIterator<Tensor>
}

/// Hooks the trainer calls; every one is optional.
public struct TrainerHooks {
    /// Every print_every steps (and at step 0), with the step's output: scalars and pictures go to the logs.
    public var log: ((_ step: Int, _ images: Tensor, _ output: SpaceOutput, _ scalars: [String: Double]) throws -> Void)?
    /// Every eval_every steps when eval_on: returns metrics (e.g. ap_avg, error_rate) to log and to keep best checkpoints by.
    public var evaluate: ((_ step: Int) throws -> [String: Double])?
    /// Receives each progress line (default: print).
    public var print: (String) -> Void = { Swift.print($0); fflush(stdout) }
    public init() {}
}

/// The training loop with the reference's semantics: global_step counts optimizer steps from 0; each
/// step runs forward at global_step (annealing, fix-alpha), backward, clips by the global gradient norm,
/// steps the fg optimizer then the bg optimizer; logs when step % print_every == 0, checkpoints when
/// step % save_every == 0, evaluates when step % eval_every == 0; stops after max_steps or max_epochs.
/// Resuming continues at the saved step + 1, in the same epoch and batch, with the optimizers' state,
/// and with the same noise as an uninterrupted run (each step's noise is seeded from (seed, step)).
public final class Trainer {
    public let model: SceneModel
    public let settings: TrainingSettings
    public let data: EpochBatches
    public var hooks: TrainerHooks
    /// The resolved config (YAML) saved in every checkpoint.
    public let configYAML: String
    public let fgOptimizer: Optimizer
    public let bgOptimizer: Optimizer
    public let checkpointer: Checkpointer
    public private(set) var globalStep = 0
    public private(set) var epoch = 0
    /// Loss per completed step of this run (what the tests compare across a resume).
    public private(set) var losses: [(step: Int, loss: Float)] = []

    public init(model: SceneModel, data: EpochBatches, settings: TrainingSettings, configYAML: String, hooks: TrainerHooks = TrainerHooks()) throws {
        self.model = model
        self.data = data
        self.settings = settings
        self.configYAML = configYAML
        self.hooks = hooks
        fgOptimizer = try makeOptimizer(name: settings.fgOptimizer.name, learningRate: settings.fgOptimizer.lr)
        bgOptimizer = try makeOptimizer(name: settings.bgOptimizer.name, learningRate: settings.bgOptimizer.lr)
        checkpointer = Checkpointer(directory: settings.checkpointDirectory, maxNum: settings.maxCheckpoints)
    }

    /// The noise of one step: a generator seeded from (seed, step), so a resumed run draws what an
    /// uninterrupted one would.
    public static func noise(seed: Int, step: Int) -> SeededNoise {
        SeededNoise(seed: UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: step))
    }

    /// Restores model, optimizers and position from `checkpoint`; returns where to continue.
    @discardableResult
    public func restore(from checkpoint: Checkpoint) throws -> (epoch: Int, skip: Int) {
        try model.loadStateDict(checkpoint.model)
        try fgOptimizer.loadStateDict(checkpoint.optimizerFg)
        try bgOptimizer.loadStateDict(checkpoint.optimizerBg)
        globalStep = checkpoint.globalStep + 1
        epoch = checkpoint.epoch
        var skip = checkpoint.batchInEpoch ?? 0
        if skip >= data.batchesPerEpoch { epoch += 1; skip = 0 }
        return (epoch, skip)
    }

    /// The checkpoint to resume from, if resuming: `resumeCheckpoint`, else the newest in the folder.
    public func checkpointToResume() throws -> String? {
        guard settings.resume else { return nil }
        if !settings.resumeCheckpoint.isEmpty {
            guard FileManager.default.fileExists(atPath: settings.resumeCheckpoint) else {
                throw SpaceError.file(path: settings.resumeCheckpoint, message: "resume_ckpt does not exist")
            }
            return settings.resumeCheckpoint
        }
        return checkpointer.latest
    }

    func snapshot(batchInEpoch: Int) -> Checkpoint {
        Checkpoint(model: model.stateDict().mapValues { $0.clone() }, optimizerFg: fgOptimizer.stateDict(), optimizerBg: bgOptimizer.stateDict(),
                   epoch: epoch, globalStep: globalStep, batchInEpoch: batchInEpoch, config: configYAML)
    }

    /// Runs until max_steps or max_epochs. `stopAfter` ends early after that many steps of this call
    /// (what tests use to interrupt a run).
    public func run(stopAfter: Int? = nil) throws {
        var skip = 0
        if let path = try checkpointToResume() {
            let ckpt = try Checkpoint.load(path: path)
            (epoch, skip) = try restore(from: ckpt)
            hooks.print("Resumed from \(path): epoch \(epoch + 1), global step \(globalStep)")
        }
        model.train()
        let groups = model.parameterGroups()
        let all = model.parameters()
        let perEpoch = data.batchesPerEpoch
        guard perEpoch > 0 else { throw SpaceError.message("the training split yields no batch (fewer images than the batch size?)") }
        var stepsThisCall = 0
        let started = Date()
        var recentBatch: [Double] = [], recentData: [Double] = [], recentLoss: [Double] = []
        while epoch < settings.maxEpochs && globalStep <= settings.maxSteps {
            let batches = try data.batches(epoch: epoch, skip: skip)
            var i = skip
            skip = 0
            var t0 = Date()
            while let images = batches.next() {
                let dataTime = Date().timeIntervalSince(t0)
                let noise = Trainer.noise(seed: settings.seed, step: globalStep)
                let out = try model(images, globalStep: globalStep, noise: noise)
                model.zeroGrad()
                try out.loss.backward()
                if settings.clipNorm > 0 { clipGradNorm(all, maxNorm: settings.clipNorm) }
                if let sched = settings.fgSchedule { fgOptimizer.learningRate = sched.value(at: globalStep) }
                if let sched = settings.bgSchedule { bgOptimizer.learningRate = sched.value(at: globalStep) }
                try fgOptimizer.step(groups.fg)
                try bgOptimizer.step(groups.bg)
                let loss = try out.loss.item()
                guard loss.isFinite else {
                    throw SpaceError.message("loss became \(loss) at global step \(globalStep); stopping (last checkpoint kept)")
                }
                losses.append((globalStep, loss))
                let batchTime = Date().timeIntervalSince(t0)
                recentBatch = Array((recentBatch + [batchTime]).suffix(20)); recentData = Array((recentData + [dataTime]).suffix(20))
                recentLoss = Array((recentLoss + [Double(loss)]).suffix(20))
                i += 1

                if globalStep % max(1, settings.printEvery) == 0 {
                    let scalars = Trainer.scalars(out, model: model)
                    try hooks.log?(globalStep, images, out, scalars)
                    let avgBatch = recentBatch.reduce(0, +) / Double(recentBatch.count)
                    let left = Double(min(settings.maxSteps - globalStep, (settings.maxEpochs - epoch) * perEpoch - i)) * avgBatch
                    hooks.print(Trainer.progressLine(name: settings.expName, step: globalStep, maxSteps: settings.maxSteps,
                                                     epoch: epoch + 1, batch: i, batches: perEpoch, secondsPerStep: avgBatch,
                                                     dataSeconds: recentData.reduce(0, +) / Double(recentData.count),
                                                     secondsLeft: left, medianLoss: median(recentLoss), scalars: scalars))
                }
                if globalStep % max(1, settings.saveEvery) == 0 {
                    let path = try checkpointer.saveLast(snapshot(batchInEpoch: i))
                    hooks.print("Checkpoint saved to \(path)")
                }
                if settings.evalOn, let evaluate = hooks.evaluate, globalStep % max(1, settings.evalEvery) == 0 {
                    let metrics = try evaluate(globalStep)
                    let ckpt = snapshot(batchInEpoch: i)
                    for (name, minIsBetter) in [("ap_dot5", false), ("ap_avg", false), ("error_rate", true)] {
                        if let v = metrics[name] { try checkpointer.saveBest(metric: name, value: v, minIsBetter: minIsBetter, checkpoint: ckpt) }
                    }
                    model.train()
                }
                globalStep += 1
                stepsThisCall += 1
                if globalStep > settings.maxSteps { break }
                if let stop = stopAfter, stepsThisCall >= stop { return }
                t0 = Date()
            }
            if globalStep > settings.maxSteps { break }
            epoch += 1
        }
        hooks.print(String(format: "Training finished at global step %d (epoch %d) after %@.", globalStep - 1, epoch + 1, formatDuration(Date().timeIntervalSince(started))))
    }

    /// The console's progress line: where the run is, its speed and time left, then this step's loss
    /// (batch mean, the scalar minimised) split into its terms, loss = -log-likelihood + KL + boundary,
    /// the running median of the last 20 steps' losses (steadier to read), and the objects per image
    /// (summed z_pres).
    public static func progressLine(name: String, step: Int, maxSteps: Int, epoch: Int, batch: Int, batches: Int,
                                    secondsPerStep: Double, dataSeconds: Double, secondsLeft: Double, medianLoss: Double,
                                    scalars: [String: Double]) -> String {
        func v(_ key: String) -> Double { scalars[key] ?? .nan }
        let klFg = v("What_KL") + v("Where_KL") + v("Pres_KL") + v("Depth_KL")
        return String(format: "[%@] step %d/%d (epoch %d, batch %d/%d) | %.2f steps/s (data %.0f ms) | ETA %@ | "
                      + "loss %.1f = -log p(x|z) %.1f + KL fg %.1f (what %.1f, where %.1f, pres %.1f, depth %.1f) + KL bg %.1f + boundary %.1f | "
                      + "median loss of last 20 steps %.1f | objects/image %.2f",
                      name, step, maxSteps, epoch, batch, batches, 1 / max(secondsPerStep, 1e-9), dataSeconds * 1000, formatDuration(secondsLeft),
                      v("loss"), -v("log_like"), klFg, v("What_KL"), v("Where_KL"), v("Pres_KL"), v("Depth_KL"), v("Bg_KL"),
                      v("loss_boundary"), medianLoss, v("count"))
    }

    /// The scalars logged every print_every steps, batch means, under the reference's names plus ELBO,
    /// the KL total and the annealed values.
    public static func scalars(_ out: SpaceOutput, model: SceneModel) -> [String: Double] {
        func mean(_ t: Tensor) -> Double { t.count == 0 ? 0 : t.array.reduce(0) { $0 + Double($1) } / Double(t.count) }
        let f = out.foreground
        var s: [String: Double] = [
            "loss": mean(out.loss), "elbo": mean(out.elbo), "log_like": mean(out.logLike), "mse": mean(out.mse),
            "What_KL": mean(f.klZWhat), "Where_KL": mean(f.klZWhere), "Pres_KL": mean(f.klZPres), "Depth_KL": mean(f.klZDepth),
            "Bg_KL": mean(out.klBg), "loss_boundary": mean(out.boundaryLoss),
            "count": mean(f.zPres) * Double(f.zPres.shape.count > 1 ? f.zPres.shape[1] : 1),
        ]
        if let space = model as? Space {
            s["tau"] = Double(space.fgModule.tau.pointer[0])
            s["z_pres_prior"] = Double(space.fgModule.priorZPresProb.pointer[0])
            s["z_scale_prior_mean"] = Double(space.fgModule.priorScaleMean)
        }
        return s
    }
}

func median(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.sorted()[v.count / 2] }

func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) : String(format: "%dm%02ds", t / 60, t % 60)
}
