import Foundation
import SpaceCore
import SpaceModels

/// Images and ground-truth boxes to evaluate on (a dataset split, or a subset of one).
public protocol EvaluationSource {
    var count: Int { get }
    /// Images at `indices` as one batch (B, 3, H, W) in [0, 1].
    func images(_ indices: [Int]) throws -> Tensor
    /// Ground-truth boxes of image `index` (normalised, confidence 1), or nil when the split has none.
    func groundTruth(_ index: Int) throws -> [DetectionBox]?
}

/// The reference's evaluation results (eval/space_eval.py), plus mse.
public struct EvaluationResult: Sendable {
    public var iouThresholds: [Double]
    public var APs: [Double]
    public var counts: CountMetrics?
    /// Mean over images of the summed squared error of the reconstruction.
    public var mse: Double
    public var images: Int
    public init(iouThresholds: [Double], APs: [Double], counts: CountMetrics?, mse: Double, images: Int) {
        self.iouThresholds = iouThresholds; self.APs = APs; self.counts = counts; self.mse = mse; self.images = images
    }

    public var apAverage: Double { APs.isEmpty ? .nan : APs.reduce(0, +) / Double(APs.count) }
    /// AP at IoU 0.5.
    public var apDot5: Double { APs.first ?? .nan }

    /// Metrics by the names the checkpointer keeps best copies of.
    public var metrics: [String: Double] {
        var m: [String: Double] = ["mse": mse]
        if !APs.isEmpty { m["ap_avg"] = apAverage; m["ap_dot5"] = apDot5 }
        if let c = counts { m["error_rate"] = c.errorRate; m["accuracy"] = c.accuracy }
        return m
    }

    /// One line with the numbers a reader looks for first: AP at IoU 0.5, the average AP, counting
    /// accuracy and the number of images.
    public var summaryLine: String {
        var parts: [String] = []
        if let i = iouThresholds.firstIndex(where: { abs($0 - 0.5) < 1e-9 }) { parts.append(String(format: "AP@IoU0.5 %.4f", APs[i])) }
        if !APs.isEmpty { parts.append(String(format: "AP average %.4f", apAverage)) }
        if let c = counts { parts.append(String(format: "counting accuracy %.4f", c.accuracy)) }
        if mse.isFinite { parts.append(String(format: "mse %.4f", mse)) }
        return "Summary: " + parts.joined(separator: ", ") + " (\(images) images)"
    }

    /// The reference's printed table.
    public func table() -> String {
        var lines: [String] = []
        let rule = String(repeating: "-", count: 15) + " " + String(repeating: "-", count: 15)
        func pad(_ s: String, _ n: Int = 15) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
        lines.append(String(repeating: "-", count: 30))
        if !APs.isEmpty {
            lines.append(pad("  IoU threshold") + " " + "      AP")
            lines.append(rule)
            for (t, ap) in zip(iouThresholds, APs) { lines.append(pad(String(format: "%.2f", t)) + " " + String(format: "%.4f", ap)) }
            lines.append(pad("Average:") + " " + String(format: "%.4f", apAverage))
            lines.append(rule)
        }
        if let c = counts {
            lines.append(pad("Perfect:") + " \(c.perfect)")
            lines.append(pad("Overcount:") + " \(c.overcount)")
            lines.append(pad("Undercount:") + " \(c.undercount)")
            lines.append(pad("Accuracy:") + " " + String(format: "%.4f", c.accuracy))
            lines.append(pad("Error rate:") + " " + String(format: "%.4f", c.errorRate))
        }
        if mse.isFinite { lines.append(pad("MSE:") + " " + String(format: "%.4f", mse)) }
        lines.append(rule)
        return lines.joined(separator: "\n")
    }

    /// The reference's results JSON fields (date, info, APs, iou_thresholds, AP average, error_rate,
    /// accuracy, perfect, undercount, overcount), plus mse and the number of images.
    public func json(info: [String: String] = [:]) throws -> Data {
        let f = DateFormatter(); f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        var obj: [String: Any] = ["date": f.string(from: Date()), "info": info, "APs": APs, "iou_thresholds": iouThresholds,
                                  "AP average": APs.isEmpty ? NSNull() : apAverage as Any,
                                  "mse": mse.isFinite ? mse as Any : NSNull(), "images": images]
        if let c = counts {
            obj["error_rate"] = c.errorRate.isFinite ? c.errorRate : NSNull()
            obj["accuracy"] = c.accuracy; obj["perfect"] = c.perfect; obj["undercount"] = c.undercount; obj["overcount"] = c.overcount
        }
        return try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
    }
}

/// Runs a model over images in eval mode (BatchNorm running statistics, no graph recorded), at the
/// global step the reference evaluates at (100000000: annealing finished), and scores its boxes.
public struct Evaluator {
    public var batchSize: Int
    public var seed: UInt64
    /// Called after each batch with (images done, total).
    public var progress: ((Int, Int) -> Void)?
    public static let evaluationStep = 100_000_000

    public init(batchSize: Int = 12, seed: UInt64 = 0, progress: ((Int, Int) -> Void)? = nil) {
        self.batchSize = max(1, batchSize); self.seed = seed; self.progress = progress
    }

    /// Predicted boxes and per-image squared error for `indices` of `source`.
    public func predict(model: SceneModel, source: EvaluationSource, indices: [Int]) throws -> (boxes: [[DetectionBox]], mse: [Double]) {
        model.eval()
        defer { model.train() }
        let noise = SeededNoise(seed: seed)
        var boxes: [[DetectionBox]] = [], mse: [Double] = []
        try Tensor.noGrad {
            var start = 0
            while start < indices.count {
                let batch = Array(indices[start..<min(start + batchSize, indices.count)])
                let x = try source.images(batch)
                let out = try model(x, globalStep: Evaluator.evaluationStep, noise: noise)
                let cells = out.foreground.zWhere.shape[1]
                let zw = out.foreground.zWhere.array, zp = out.foreground.zPresProb.array
                for b in 0..<batch.count {
                    boxes.append(boxesFromLatents(zWhere: Array(zw[(b * cells * 4)..<((b + 1) * cells * 4)]),
                                                  zPresProb: Array(zp[(b * cells)..<((b + 1) * cells)])))
                    mse.append(Double(out.mse.pointer[b]))
                }
                start += batch.count
                progress?(start, indices.count)
            }
        }
        return (boxes, mse)
    }

    /// Evaluates on `indices` (all images when nil): AP and counts where ground truth exists, and mse.
    public func evaluate(model: SceneModel, source: EvaluationSource, indices: [Int]? = nil,
                         iouThresholds: [Double] = defaultIoUThresholds) throws -> EvaluationResult {
        let idx = indices ?? Array(0..<source.count)
        let (pred, mse) = try predict(model: model, source: source, indices: idx)
        let gts = try idx.map { try source.groundTruth($0) }
        let meanMSE = mse.isEmpty ? .nan : mse.reduce(0, +) / Double(mse.count)
        guard !gts.isEmpty, gts.allSatisfy({ $0 != nil }) else {
            return EvaluationResult(iouThresholds: iouThresholds, APs: [], counts: nil, mse: meanMSE, images: idx.count)
        }
        let gt = gts.map { $0! }
        return EvaluationResult(iouThresholds: iouThresholds,
                                APs: averagePrecision(predictions: pred, groundTruth: gt, iouThresholds: iouThresholds),
                                counts: countMetrics(predictions: pred, groundTruth: gt), mse: meanMSE, images: idx.count)
    }
}
