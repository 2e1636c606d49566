import Foundation
import SpaceCore

/// One saved training state: the model's state dict, both optimizers' state, where training was, and
/// the resolved config it ran with.
///
/// On disk a checkpoint is one safetensors file (model keys as in the reference's state dict, optimizer
/// state under `optimizer_fg.` / `optimizer_bg.`, the rest as metadata), written atomically, plus a small
/// JSON file beside it with the same step, epoch and config for people and scripts. A PyTorch `.pth` of
/// the reference's checkpoint dict (or a bare state dict) loads too, without optimizer state.
public struct Checkpoint {
    public var model: [String: StateValue]
    public var optimizerFg: [String: Tensor] = [:]
    public var optimizerBg: [String: Tensor] = [:]
    public var epoch: Int
    /// The last completed global step.
    public var globalStep: Int
    /// Batches of `epoch` already consumed (so a resume continues mid-epoch); nil in reference checkpoints.
    public var batchInEpoch: Int?
    /// The resolved config as YAML; nil in reference checkpoints.
    public var config: String?

    public init(model: [String: StateValue], optimizerFg: [String: Tensor] = [:], optimizerBg: [String: Tensor] = [:],
                epoch: Int, globalStep: Int, batchInEpoch: Int? = nil, config: String? = nil) {
        self.model = model; self.optimizerFg = optimizerFg; self.optimizerBg = optimizerBg
        self.epoch = epoch; self.globalStep = globalStep; self.batchInEpoch = batchInEpoch; self.config = config
    }

    static let fgPrefix = "optimizer_fg.", bgPrefix = "optimizer_bg."

    /// Writes the checkpoint to `path` (a .safetensors file) and its JSON summary beside it, each
    /// through a temporary file and a rename: a crash at any moment leaves either the old or the new
    /// file, never a partial one.
    public func save(to path: String) throws {
        var values = model
        for (k, t) in optimizerFg { values[Checkpoint.fgPrefix + k] = .float(t) }
        for (k, t) in optimizerBg { values[Checkpoint.bgPrefix + k] = .float(t) }
        var meta: [String: String] = ["format": "space-checkpoint-1", "epoch": String(epoch), "global_step": String(globalStep)]
        if let b = batchInEpoch { meta["batch_in_epoch"] = String(b) }
        if let c = config { meta["config"] = c }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        try SafeTensors.save(values, metadata: meta, to: path)
        var summary: [String: Any] = ["epoch": epoch, "global_step": globalStep, "file": (path as NSString).lastPathComponent]
        if let b = batchInEpoch { summary["batch_in_epoch"] = b }
        if let c = config { summary["config"] = c }
        let json = try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])
        try atomicWrite(json, to: Checkpoint.summaryPath(for: path))
    }

    static func summaryPath(for path: String) -> String {
        ((path as NSString).deletingPathExtension as String) + ".json"
    }

    /// Reads a checkpoint of ours, or a PyTorch checkpoint of the reference (zip or legacy format).
    public static func load(path: String) throws -> Checkpoint {
        let (state, epoch, step) = try WeightFiles.load(path: path)
        var model: [String: StateValue] = [:], fg: [String: Tensor] = [:], bg: [String: Tensor] = [:]
        for (k, v) in state {
            if k.hasPrefix(fgPrefix) || k.hasPrefix(bgPrefix) {
                guard let t = v.tensor else { throw SpaceError.file(path: path, message: "optimizer state '\(k)' is not float32") }
                if k.hasPrefix(fgPrefix) { fg[String(k.dropFirst(fgPrefix.count))] = t } else { bg[String(k.dropFirst(bgPrefix.count))] = t }
            } else {
                model[k] = v
            }
        }
        var ckpt = Checkpoint(model: model, optimizerFg: fg, optimizerBg: bg, epoch: epoch ?? 0, globalStep: step ?? 0)
        if let st = try? SafeTensors.load(path: path) {
            ckpt.batchInEpoch = st.metadata["batch_in_epoch"].flatMap { Int($0) }
            ckpt.config = st.metadata["config"]
        }
        return ckpt
    }
}

/// Writes `data` to `path` through a temporary file in the same folder and a rename.
public func atomicWrite(_ data: Data, to path: String) throws {
    let dir = (path as NSString).deletingLastPathComponent
    if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
    let tmp = (dir.isEmpty ? "." : dir) + "/." + (path as NSString).lastPathComponent + ".tmp-\(getpid())"
    guard FileManager.default.createFile(atPath: tmp, contents: data) else {
        throw SpaceError.file(path: tmp, message: "cannot write")
    }
    guard rename(tmp, path) == 0 else {
        let err = String(cString: strerror(errno))
        unlink(tmp)
        throw SpaceError.file(path: path, message: "cannot rename into place: \(err)")
    }
}

/// The checkpoints of one experiment, laid out as the reference's output/checkpoints/<exp_name>/:
/// `model_<global_step + 1, 9 digits>.safetensors` (+ .json), at most `maxNum` kept (oldest removed),
/// and `best_<metric>.safetensors` with `best_<metric>.json` per tracked metric.
public final class Checkpointer {
    public let directory: String
    public let maxNum: Int

    public init(directory: String, maxNum: Int) {
        self.directory = directory
        self.maxNum = max(1, maxNum)
    }

    /// Regular checkpoints in this folder, oldest first, by the step in their names.
    public func checkpoints() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("model_"), name.hasSuffix(".safetensors"),
                  let n = Int(name.dropFirst("model_".count).dropLast(".safetensors".count)) else { return nil }
            return (n, (directory as NSString).appendingPathComponent(name))
        }.sorted { $0.0 < $1.0 }.map { $0.1 }
    }

    /// The newest checkpoint, or nil when there is none.
    public var latest: String? { checkpoints().last }

    /// Saves `checkpoint` as the newest and removes the oldest beyond `maxNum` (after the new one is in place).
    @discardableResult
    public func saveLast(_ checkpoint: Checkpoint) throws -> String {
        let path = (directory as NSString).appendingPathComponent(String(format: "model_%09d.safetensors", checkpoint.globalStep + 1))
        try checkpoint.save(to: path)
        let all = checkpoints()
        if all.count > maxNum {
            for old in all.prefix(all.count - maxNum) {
                try? FileManager.default.removeItem(atPath: old)
                try? FileManager.default.removeItem(atPath: Checkpoint.summaryPath(for: old))
            }
        }
        return path
    }

    public func bestPath(_ metric: String) -> String { (directory as NSString).appendingPathComponent("best_\(metric).safetensors") }

    /// The recorded best value of `metric`, if any.
    public func bestValue(_ metric: String) -> Double? {
        let file = (directory as NSString).appendingPathComponent("best_\(metric).json")
        guard let data = FileManager.default.contents(atPath: file),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return obj["value"] as? Double
    }

    /// Keeps `checkpoint` as the best for `metric` when `value` beats the recorded best (or none is
    /// recorded, or the recorded value is not finite), as the reference's save_best. One deliberate
    /// difference: a non-finite new value never replaces a finite best (the reference would keep a
    /// diverged model as "best"). Returns whether it saved.
    @discardableResult
    public func saveBest(metric: String, value: Double, minIsBetter: Bool, checkpoint: Checkpoint) throws -> Bool {
        if let previous = bestValue(metric), previous.isFinite, value.isFinite {
            if minIsBetter ? !(value < previous) : !(value > previous) { return false }
        } else if let previous = bestValue(metric), previous.isFinite, !value.isFinite {
            return false
        }
        try checkpoint.save(to: bestPath(metric))
        let formatter = DateFormatter(); formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        let log: [String: Any] = ["name": metric, "value": value, "date": formatter.string(from: Date()), "global_step": checkpoint.globalStep]
        try atomicWrite(try JSONSerialization.data(withJSONObject: log, options: [.sortedKeys]),
                        to: (directory as NSString).appendingPathComponent("best_\(metric).json"))
        return true
    }
}
