import SpaceCore

/// A detected object's box in normalised image coordinates, the reference's AP convention:
/// y_min, y_max, x_min, x_max in [0, 1], with a confidence.
public struct DetectionBox: Equatable, Sendable {
    public var yMin: Double, yMax: Double, xMin: Double, xMax: Double
    public var confidence: Double
    public init(yMin: Double, yMax: Double, xMin: Double, xMax: Double, confidence: Double = 1) {
        self.yMin = yMin; self.yMax = yMax; self.xMin = xMin; self.xMax = xMax; self.confidence = confidence
    }
}

/// Boxes of one image from SPACE's per-cell latents, as the reference's evaluation reads them: every cell
/// with z_pres_prob > `threshold` gives a box centred at ((shift + 1) / 2) with size `scale` (both in units
/// of the image side), confidence z_pres_prob.
///
/// zWhere: (G*G, 4) = (scale_x, scale_y, shift_x, shift_y); zPresProb: (G*G) or (G*G, 1).
public func boxesFromLatents(zWhere: [Float], zPresProb: [Float], threshold: Float = 0.5) -> [DetectionBox] {
    var out: [DetectionBox] = []
    for c in 0..<zPresProb.count where zPresProb[c] > threshold {
        let (sx, sy, tx, ty) = (Double(zWhere[4 * c]), Double(zWhere[4 * c + 1]), Double(zWhere[4 * c + 2]), Double(zWhere[4 * c + 3]))
        let cx = (tx + 1) / 2, cy = (ty + 1) / 2
        out.append(DetectionBox(yMin: cy - sy / 2, yMax: cy + sy / 2, xMin: cx - sx / 2, xMax: cx + sx / 2,
                                confidence: Double(zPresProb[c])))
    }
    return out
}

/// Draws box outlines (`thickness` pixels, colour `rgb`) onto a copy of an image (3, H, W) in [0, 1].
public func drawBoxes(_ image: Tensor, _ boxes: [DetectionBox], rgb: (Float, Float, Float) = (1, 0, 0), thickness: Int = 1) -> Tensor {
    let out = image.clone()
    let (h, w) = (image.shape[1], image.shape[2])
    let p = out.pointer, colour = [rgb.0, rgb.1, rgb.2]
    func put(_ y: Int, _ x: Int) {
        guard y >= 0, y < h, x >= 0, x < w else { return }
        for c in 0..<3 { p[c * h * w + y * w + x] = colour[c] }
    }
    for b in boxes {
        let x0 = Int((b.xMin * Double(w)).rounded(.down)), x1 = Int((b.xMax * Double(w)).rounded(.up)) - 1
        let y0 = Int((b.yMin * Double(h)).rounded(.down)), y1 = Int((b.yMax * Double(h)).rounded(.up)) - 1
        guard x1 >= x0, y1 >= y0 else { continue }
        for t in 0..<thickness {
            for x in x0...x1 { put(y0 + t, x); put(y1 - t, x) }
            for y in y0...y1 { put(y, x0 + t); put(y, x1 - t) }
        }
    }
    return out
}
