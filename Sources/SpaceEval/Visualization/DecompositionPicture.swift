import SpaceCore
import SpaceModels

/// The picture `space show` writes and training logs to TensorBoard: a titled column per part of
/// SPACE's explanation of each image (input, reconstruction, foreground, background, alpha, the input
/// with the boxes found, then each background component and its mask), one row per image, every tile
/// magnified `scale` times. Boxes are the cells with z_pres probability above `threshold`, outlined in
/// a colour that tells the probability (red at the threshold, yellow half way, green at 1; a legend
/// under the rows says so); the boxes tile states how many objects were found, and how many there are
/// when ground truth is given.
public struct DecompositionPicture {
    public var scale: Int
    public var threshold: Float
    public init(scale: Int = 2, threshold: Float = 0.5) {
        self.scale = max(1, scale)
        self.threshold = threshold
    }

    /// The colour of a box of confidence `p`: red at `threshold`, yellow half way to 1, green at 1.
    public func colour(confidence p: Double) -> (Float, Float, Float) {
        let t = Float(max(0, min(1, (p - Double(threshold)) / max(1e-6, 1 - Double(threshold)))))
        return t < 0.5 ? (1, 2 * t, 0) : (2 - 2 * t, 1 - 0.15 * (2 * t - 1), 0)
    }

    /// Column titles, in order, for `components` background components.
    public static func titles(components: Int) -> [String] {
        ["input", "reconstruction", "foreground", "background", "alpha", "boxes"]
            + (0..<components).map { "component \($0 + 1)" } + (0..<components).map { "mask \($0 + 1)" }
    }

    /// Renders the first `count` images (all when nil) of a batch and the model's output on it;
    /// `truth` optionally gives each image's ground-truth boxes (for the count). Returns (3, H, W) in [0, 1].
    public func render(images: Tensor, output: SpaceOutput, count: Int? = nil, truth: [[DetectionBox]]? = nil) throws -> Tensor {
        let f = output.foreground, bgOut = output.background
        guard images.rank == 4, images.shape[1] == 3 else {
            throw SpaceError.shape(op: "DecompositionPicture", message: "images of shape \(shapeString(images.shape)); expected (B, 3, H, W)")
        }
        let (batch, h, w) = (images.shape[0], images.shape[2], images.shape[3])
        let n = min(count ?? batch, batch)
        let k = bgOut.comps.shape[1], cells = f.zWhere.shape[1]
        let titles = DecompositionPicture.titles(components: k)
        let s = scale, fontScale = scale >= 2 ? 2 : 1
        let (tileH, tileW) = (h * s, w * s), gap = 2 * s, margin = 4 * fontScale
        let lineH = BitmapFont.lineHeight * fontScale
        let header = lineH + margin
        let legendH = lineH + 2 * margin
        let columns = titles.count
        let outW = margin * 2 + columns * tileW + (columns - 1) * gap
        let outH = header + n * tileH + max(0, n - 1) * gap + legendH
        var pixels = [Float](repeating: 1, count: 3 * outH * outW)
        let plane = outH * outW

        // A (C, h, w) image magnified `s` times (nearest neighbour), clamped to [0, 1].
        func magnified(_ t: Tensor) throws -> Tensor {
            let c = t.shape[0], src = t.array
            var big = [Float](repeating: 0, count: c * tileH * tileW)
            for ch in 0..<c {
                for y in 0..<tileH {
                    let row = (ch * tileH + y) * tileW, from = (ch * h + y / s) * w
                    for x in 0..<tileW { big[row + x] = max(0, min(1, src[from + x / s])) }
                }
            }
            return try Tensor(big, shape: [c, tileH, tileW])
        }
        // One magnified (C, tileH, tileW) tile at (top, left); one-channel tiles are drawn grey.
        func blit(_ t: Tensor, top: Int, left: Int) {
            let c = t.shape[0], src = t.array
            for ch in 0..<3 {
                let from = c == 1 ? 0 : ch
                for y in 0..<tileH {
                    let row = (ch * outH + top + y) * outW + left
                    for x in 0..<tileW { pixels[row + x] = src[(from * tileH + y) * tileW + x] }
                }
            }
        }
        func rect(top: Int, left: Int, height: Int, width: Int, rgb: (Float, Float, Float)) {
            let y0 = max(0, top), y1 = min(outH, top + height), x0 = max(0, left), x1 = min(outW, left + width)
            guard y1 > y0, x1 > x0 else { return }
            for y in y0..<y1 {
                for x in x0..<x1 {
                    pixels[y * outW + x] = rgb.0; pixels[plane + y * outW + x] = rgb.1; pixels[2 * plane + y * outW + x] = rgb.2
                }
            }
        }
        for (j, title) in titles.enumerated() {
            let left = margin + j * (tileW + gap)
            let textW = BitmapFont.width(of: title, scale: fontScale)
            drawText(title, into: &pixels, height: outH, width: outW, x: left + max(0, (tileW - textW) / 2), y: margin / 2 + fontScale,
                     scale: fontScale)
        }
        let zw = f.zWhere.array, zp = f.zPresProb.array
        for b in 0..<n {
            let top = header + b * (tileH + gap)
            let x = try images.select(dim: 0, index: b)
            // The boxes tile: the input magnified, then each box outlined (surest last, so on top).
            let boxes = boxesFromLatents(zWhere: Array(zw[(b * cells * 4)..<((b + 1) * cells * 4)]),
                                         zPresProb: Array(zp[(b * cells)..<((b + 1) * cells)]), threshold: threshold)
            var withBoxes = try magnified(x)
            for box in boxes.sorted(by: { $0.confidence < $1.confidence }) {
                withBoxes = drawBoxes(withBoxes, [box], rgb: colour(confidence: box.confidence), thickness: s)
            }
            var tiles: [Tensor] = try [x, output.y.select(dim: 0, index: b), f.fg.select(dim: 0, index: b),
                                       bgOut.bg.select(dim: 0, index: b), f.alphaMap.select(dim: 0, index: b)].map(magnified)
            tiles.append(withBoxes)
            let comps = try bgOut.comps.select(dim: 0, index: b), masks = try bgOut.masks.select(dim: 0, index: b)
            for j in 0..<k { tiles.append(try magnified(comps.select(dim: 0, index: j))) }
            for j in 0..<k { tiles.append(try magnified(masks.select(dim: 0, index: j))) }
            for (j, tile) in tiles.enumerated() { blit(tile, top: top, left: margin + j * (tileW + gap)) }

            let boxesLeft = margin + 5 * (tileW + gap)
            var label = "\(boxes.count) found"
            if let truth, b < truth.count { label += ", \(truth[b].count) true" }
            let labelW = BitmapFont.width(of: label, scale: fontScale) + 2 * fontScale
            rect(top: top + tileH - lineH, left: boxesLeft, height: lineH, width: min(tileW, labelW + 2 * fontScale), rgb: (0, 0, 0))
            drawText(label, into: &pixels, height: outH, width: outW, x: boxesLeft + 2 * fontScale, y: top + tileH - lineH + fontScale,
                     scale: fontScale, rgb: (1, 1, 1))
        }

        // Legend: what the box colours mean.
        let legendTop = header + n * tileH + max(0, n - 1) * gap + margin
        var x = margin
        let intro = String(format: "boxes: cells with z_pres > %.2f, colour = z_pres:", threshold)
        drawText(intro, into: &pixels, height: outH, width: outW, x: x, y: legendTop + fontScale, scale: fontScale)
        x += BitmapFont.width(of: intro, scale: fontScale) + 4 * fontScale
        for p in [Double(threshold), (Double(threshold) + 1) / 2, 1.0] {
            rect(top: legendTop, left: x, height: lineH - fontScale, width: lineH - fontScale, rgb: colour(confidence: p))
            x += lineH + fontScale
            let v = String(format: "%.2f", p)
            drawText(v, into: &pixels, height: outH, width: outW, x: x, y: legendTop + fontScale, scale: fontScale)
            x += BitmapFont.width(of: v, scale: fontScale) + 6 * fontScale
        }
        return Tensor(shape: [3, outH, outW], storage: Storage(pixels))
    }
}
