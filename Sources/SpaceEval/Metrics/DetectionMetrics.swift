import Foundation

// The reference's detection metrics (its eval/ap.py), reproduced number for number: average
// precision over IoU thresholds at 11 recall points, and the counting metrics. Pure functions of
// per-image box lists, accumulated in Double.

/// numpy.linspace(start, stop, num) with numpy's arithmetic (i * step + start, last = stop exactly),
/// so thresholds such as 0.8999999999999999 come out bit for bit as in the reference.
public func numpyLinspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
    guard num > 1 else { return num == 1 ? [start] : [] }
    let step = (stop - start) / Double(num - 1)
    var y = (0..<num).map { Double($0) * step + start }
    y[num - 1] = stop
    return y
}

/// The reference's default IoU thresholds: 0.5, 0.55, ..., 0.95.
public let defaultIoUThresholds = numpyLinspace(0.5, 0.95, 10)
/// The 11 recall points 0, 0.1, ..., 1.
public let defaultRecallValues = numpyLinspace(0, 1, 11)

/// IoU of boxes given as (y_min, y_max, x_min, x_max); NaN when both are empty (0 / 0), as numpy.
func intersectionOverUnion(_ p: DetectionBox, _ g: DetectionBox) -> Double {
    let areaP = (p.yMax - p.yMin) * (p.xMax - p.xMin), areaG = (g.yMax - g.yMin) * (g.xMax - g.xMin)
    let top = max(p.yMin, g.yMin), bottom = min(p.yMax, g.yMax)
    let left = max(p.xMin, g.xMin), right = min(p.xMax, g.xMax)
    let inter = max(0.0, bottom - top) * max(0.0, right - left)
    return inter / (areaP + areaG - inter)
}

/// numpy.argmax semantics: the first maximum, and the first NaN if there is one.
func numpyArgmax(_ v: [Double]) -> Int {
    var best = 0
    for i in v.indices {
        if v[i].isNaN { return i }
        if v[i] > v[best] { best = i }
    }
    return best
}

/// Average precision at each IoU threshold (the reference's compute_ap). Per threshold: predictions of
/// each image are sorted by decreasing confidence (stable); each is a hit when its best-IoU ground truth
/// exceeds the threshold and was not already taken; all hits are sorted by confidence (stable); AP is the
/// mean over the recall points r of the highest precision at recall >= r (0 when none).
public func averagePrecision(predictions: [[DetectionBox]], groundTruth: [[DetectionBox]],
                             iouThresholds: [Double] = defaultIoUThresholds,
                             recallValues: [Double] = defaultRecallValues) -> [Double] {
    iouThresholds.map { threshold in
        var countGT = 0
        var hits: [(hit: Bool, conf: Double)] = []
        for (predsUnsorted, gt) in zip(predictions, groundTruth) {
            countGT += gt.count
            let preds = stableSorted(predsUnsorted) { $0.confidence > $1.confidence }
            if gt.isEmpty { hits += preds.map { (false, $0.confidence) }; continue }
            if preds.isEmpty { continue }
            var used = [Bool](repeating: false, count: gt.count)
            for p in preds {
                let ious = gt.map { intersectionOverUnion(p, $0) }
                let best = numpyArgmax(ious)
                if ious[best] > threshold && !used[best] {
                    hits.append((true, p.confidence)); used[best] = true
                } else {
                    hits.append((false, p.confidence))
                }
            }
        }
        if hits.isEmpty { return 0.0 }
        let sorted = stableSorted(hits) { $0.conf > $1.conf }
        var precision: [Double] = [], recall: [Double] = []
        var cum = 0
        for (i, h) in sorted.enumerated() {
            if h.hit { cum += 1 }
            precision.append(Double(cum) / Double(i + 1))
            recall.append(Double(cum) / Double(countGT))
        }
        let precs = recallValues.map { r -> Double in
            var best: Double? = nil
            for (p, rc) in zip(precision, recall) where rc >= r { best = max(best ?? p, p) }
            return best ?? 0.0
        }
        return precs.reduce(0, +) / Double(precs.count)
    }
}

/// The reference's counting metrics: mean over images of |#pred - #gt| / #gt, and how many images are
/// counted exactly, over or under; accuracy = perfect / (perfect + overcount + undercount).
public struct CountMetrics: Equatable, Sendable {
    public var errorRate: Double
    public var perfect: Int, overcount: Int, undercount: Int
    public var accuracy: Double { Double(perfect) / Double(perfect + overcount + undercount) }
}

/// Counting metrics. An image with no ground-truth box has an undefined error rate (the reference
/// divides by zero there); it contributes +inf when predictions exist and 0 when none do.
public func countMetrics(predictions: [[DetectionBox]], groundTruth: [[DetectionBox]]) -> CountMetrics {
    var rates: [Double] = [], perfect = 0, over = 0, under = 0
    for (p, g) in zip(predictions, groundTruth) {
        let (m, n) = (p.count, g.count)
        rates.append(n == 0 ? (m == 0 ? 0 : .infinity) : Double(abs(m - n)) / Double(n))
        if m == n { perfect += 1 } else if m > n { over += 1 } else { under += 1 }
    }
    return CountMetrics(errorRate: rates.isEmpty ? .nan : rates.reduce(0, +) / Double(rates.count),
                        perfect: perfect, overcount: over, undercount: under)
}

/// Sorting that keeps the order of equal elements (Python's sorted is stable; Swift's sort is not).
func stableSorted<T>(_ v: [T], by less: (T, T) -> Bool) -> [T] {
    v.enumerated().sorted { a, b in less(a.element, b.element) || (!less(b.element, a.element) && a.offset < b.offset) }.map { $0.element }
}
