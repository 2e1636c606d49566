import ArgumentParser
import Foundation
import SpaceCore
import SpaceData
import SpaceEval
import SpaceModels
import SpaceTrain

extension Experiment {
    /// The checkpoint `eval`/`show` read: resume_ckpt when set, else (eval.checkpoint) the best by
    /// eval.metric or the last one in checkpointdir/exp_name.
    func checkpointForEvaluation(preferBest: Bool) throws -> String {
        if !config.resumeCkpt.isEmpty {
            let p = SpaceConfig.absolutePath(config.resumeCkpt)
            guard FileManager.default.fileExists(atPath: p) else { throw SpaceError.file(path: p, message: "resume_ckpt does not exist") }
            return p
        }
        let checkpointer = Checkpointer(directory: checkpointDirectory, maxNum: config.train.maxCkpt)
        if preferBest && config.eval.checkpoint == "best" {
            let p = checkpointer.bestPath(config.eval.metric)
            guard FileManager.default.fileExists(atPath: p) else {
                throw SpaceError.file(path: p, message: "no best checkpoint for \(config.eval.metric) (train with train.eval_on True, or pass eval.checkpoint last or resume_ckpt PATH)")
            }
            return p
        }
        guard let last = checkpointer.latest else {
            throw SpaceError.file(path: checkpointDirectory, message: "no checkpoint found (train first, or pass resume_ckpt PATH)")
        }
        return last
    }

    /// The model with the weights of `path` (ours or a reference .pth), in eval mode.
    func loadModel(from path: String) throws -> SceneModel {
        let model = try makeModel()
        let ckpt = try Checkpoint.load(path: path)
        try model.loadStateDict(ckpt.model)
        model.eval()
        print("Loaded \(path) (global step \(ckpt.globalStep))")
        return model
    }
}

/// `space eval --config FILE [KEY VALUE ...]`: the reference's test evaluation (AP over IoU thresholds,
/// counting accuracy) on the test split, printed as a table and saved as JSON.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval",
        abstract: "Evaluate a checkpoint on the test split: AP at IoU 0.5:0.95, counting accuracy, mse.")

    @Option(help: "YAML config.") var config: String?
    @Argument(parsing: .captureForPassthrough, help: "KEY VALUE overrides.") var overrides: [String] = []

    func run() throws {
        let exp = try Experiment.load(configFile: config, overrides: overrides)
        print("Experiment name: \(exp.expName)\nDataset: \(exp.config.dataset)")
        let model = try exp.loadModel(from: try exp.checkpointForEvaluation(preferBest: true))
        let testSet = try exp.dataset(.test)
        let source = DatasetEvaluationSource(dataset: testSet)
        let bar = ProgressBar(label: "Evaluating", total: testSet.count)
        let evaluator = Evaluator(batchSize: exp.config.evalCfg.test.batchSize, seed: UInt64(truncatingIfNeeded: exp.config.seed),
                                  progress: { done, total in bar.update(done) })
        let result = try evaluator.evaluate(model: model, source: source)
        bar.finish()
        print(result.table())
        print(result.summaryLine)
        try FileManager.default.createDirectory(atPath: exp.evalDirectory, withIntermediateDirectories: true)
        let f = DateFormatter(); f.dateFormat = "yyyy-MM-dd-HH-mm-ss"
        let path = (exp.evalDirectory as NSString).appendingPathComponent("results_\(f.string(from: Date())).json")
        try atomicWrite(try result.json(info: ["exp_name": exp.expName]), to: path)
        print("Results have been saved to \(path).")
    }
}

/// `space score --pred DIR --gt DIR`: scores box files without a model (bb_<i>.txt; ground truth
/// `cx,cy,w,h` in pixels of the 128-pixel image, predictions the same plus a confidence column).
struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Score predicted boxes against ground truth (OBJ3D box files).")

    @Option(help: "Folder of predicted bb_<i>.txt files (cx,cy,w,h,confidence).") var pred: String
    @Option(help: "Folder of ground-truth bb_<i>.txt files (cx,cy,w,h).") var gt: String
    @Option(help: "Image side the pixel coordinates refer to.") var size = 128.0
    @Option(help: "Write the results JSON here.") var output: String?

    func run() throws {
        let gtBoxes = try BoxFiles.read(directory: gt, columns: 4, size: size)
        let predBoxes = try BoxFiles.read(directory: pred, columns: 5, size: size, count: gtBoxes.count)
        let result = EvaluationResult(iouThresholds: defaultIoUThresholds,
                                      APs: averagePrecision(predictions: predBoxes, groundTruth: gtBoxes),
                                      counts: countMetrics(predictions: predBoxes, groundTruth: gtBoxes), mse: .nan, images: gtBoxes.count)
        print(result.table())
        if let output { try atomicWrite(try result.json(info: ["pred": pred, "gt": gt]), to: output); print("Results have been saved to \(output).") }
    }
}

/// Reading folders of OBJ3D-style box files.
enum BoxFiles {
    /// bb_0.txt ... bb_<n-1>.txt of `directory` (n = `count`, or as many as exist in sequence).
    /// Each non-blank line holds `columns` comma-separated numbers; a line that does not parse is an
    /// error naming the file and line.
    static func read(directory: String, columns: Int, size: Double, count: Int? = nil) throws -> [[DetectionBox]] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw SpaceError.file(path: directory, message: "no such folder")
        }
        var out: [[DetectionBox]] = []
        var i = 0
        while count.map({ i < $0 }) ?? true {
            let path = (directory as NSString).appendingPathComponent("bb_\(i).txt")
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                if count != nil { throw SpaceError.file(path: path, message: "missing (the ground truth has \(count!) files)") }
                break
            }
            var boxes: [DetectionBox] = []
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let t = line.trimmingCharacters(in: .whitespaces)
                if t.isEmpty { continue }
                let fields = t.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
                guard fields.count == columns, fields.allSatisfy({ $0 != nil && $0!.isFinite }) else {
                    throw SpaceError.file(path: path, message: "line \(n + 1): expected \(columns) comma-separated numbers, got '\(t)'")
                }
                let v = fields.map { $0! }
                boxes.append(DetectionBox(yMin: (v[1] - v[3] / 2) / size, yMax: (v[1] + v[3] / 2) / size,
                                          xMin: (v[0] - v[2] / 2) / size, xMax: (v[0] + v[2] / 2) / size,
                                          confidence: columns > 4 ? v[4] : 1))
            }
            out.append(boxes)
            i += 1
        }
        guard !out.isEmpty else { throw SpaceError.file(path: directory, message: "no bb_0.txt") }
        return out
    }
}

/// A one-line progress bar on standard error.
final class ProgressBar {
    let label: String, total: Int
    init(label: String, total: Int) { self.label = label; self.total = max(total, 1) }
    func update(_ done: Int) {
        let width = 30, filled = min(width, width * done / total)
        FileHandle.standardError.write(Data(String(format: "\r%@ [%@%@] %d/%d", label, String(repeating: "#", count: filled),
                                                   String(repeating: ".", count: width - filled), done, total).utf8))
    }
    func finish() { FileHandle.standardError.write(Data("\n".utf8)) }
}
