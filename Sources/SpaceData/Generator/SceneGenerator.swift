import Foundation
import SpaceCore

/// The shapes the scene generator draws.
public enum SceneShape: String, CaseIterable, Sendable {
    case circle, square, triangle, diamond
}

/// One object of a generated scene.
public struct SceneObject: Equatable, Sendable {
    public let shape: SceneShape
    /// RGB colour.
    public let color: [UInt8]
    /// `[center_x, center_y, width, height]` in pixels: the shape's exact extent (OBJ3D box convention).
    public let box: [Float]
}

/// A rendered scene: the picture, its objects, and optionally each object's coverage.
public struct RenderedScene: Sendable {
    public let image: RGBImage
    public let objects: [SceneObject]
    /// Per object, the fraction of each pixel (row-major, size x size) the object covers; only when
    /// rendering was asked for masks.
    public let masks: [[Float]]?

    /// The ground-truth boxes, one `[center_x, center_y, width, height]` per object.
    public var boxes: [[Float]] { objects.map(\.box) }
}

/// Settings of the procedural scenes.
public struct SceneGeneratorOptions: Equatable, Sendable {
    public var size: Int = 128
    public var objectCount: ClosedRange<Int> = 1...4
    /// Width and height of an object in pixels.
    public var objectSize: ClosedRange<Float> = 14...24
    public var shapes: [SceneShape] = SceneShape.allCases
    /// 4 x 4 supersampling of object edges; off draws hard edges (one sample per pixel centre).
    public var antialias: Bool = true
    /// Minimum gap in pixels between object boxes (objects never overlap).
    public var gap: Float = 2

    public init() {}
}

/// Renders a small procedural dataset in the OBJ3D layout: a few flat-coloured shapes over a smooth
/// background (a two-colour gradient in a random direction plus soft blobs), each picture a pure
/// function of (seed, split, index).
///
/// `write(root:counts:)` produces `root/<split>/<N>-scene.png` (128 x 128 RGB) and
/// `root/<split>/bb/bb_<N>.txt` for `N` from 0, splits `train`, `val`, `test` — what `Obj3DDataset`
/// and the evaluation read. Box coordinates are multiples of 1/4 pixel, so the text files hold them
/// exactly.
public struct SceneGenerator: Sendable {
    public let seed: UInt64
    public let options: SceneGeneratorOptions

    public init(seed: UInt64, options: SceneGeneratorOptions = SceneGeneratorOptions()) {
        self.seed = seed
        self.options = options
    }

    /// The file name of image `index` in a split folder.
    public static func imageName(_ index: Int) -> String { "\(index)-scene.png" }

    // MARK: - Writing

    /// Writes the three splits under `root`, each file atomically, rendering in parallel (PNGs use
    /// libpng's fast setting: about 11 KB each and a sixth of the encoding time). Throws when a
    /// split folder already holds entries, unless `overwrite` is set (then earlier generated images
    /// and box files beyond the new counts are removed).
    public func write(root: String, counts: (train: Int, val: Int, test: Int), overwrite: Bool = false) throws {
        let plan: [(DatasetSplit, Int)] = [(.train, counts.train), (.val, counts.val), (.test, counts.test)]
        for (split, count) in plan {
            guard count >= 0 else { throw SpaceError.argument(op: "SceneGenerator.write", message: "negative count \(count) for \(split.rawValue)") }
            let dir = root + "/" + split.rawValue
            if FolderListing.isDirectory(dir) {
                let existing = try FolderListing.entries(dir, what: "split")
                if !existing.isEmpty && !overwrite {
                    throw SpaceError.file(path: dir, message: "folder is not empty (pass overwrite to replace a generated dataset)")
                }
                if overwrite { try removeStale(dir: dir, keeping: count) }
            }
            do {
                try FileManager.default.createDirectory(atPath: dir + "/bb", withIntermediateDirectories: true)
            } catch {
                throw SpaceError.file(path: dir + "/bb", message: "cannot create folder: \(error.localizedDescription)")
            }
        }
        let jobs = plan.flatMap { split, count in (0..<count).map { (split, $0) } }
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: jobs.count) { i in
            guard !errors.hasError else { return }
            let (split, index) = jobs[i]
            let dir = root + "/" + split.rawValue
            do {
                let scene = render(index: index, split: split)
                try PNGCodec.write(scene.image, to: dir + "/" + SceneGenerator.imageName(index), fast: true)
                try GroundTruthBoxes.write(scene.boxes, to: GroundTruthBoxes.fileName(directory: dir + "/bb", index: index))
            } catch {
                errors.set(error)
            }
        }
        if let error = errors.first { throw error }
    }

    private func removeStale(dir: String, keeping count: Int) throws {
        func stale(_ name: String, prefix: String, suffix: String) -> Bool {
            guard name.hasPrefix(prefix), name.hasSuffix(suffix), name.count > prefix.count + suffix.count,
                  let n = Int(name.dropFirst(prefix.count).dropLast(suffix.count)) else { return false }
            return n >= count
        }
        var doomed = try FolderListing.files(dir, what: "split").filter { stale($0, prefix: "", suffix: "-scene.png") }.map { dir + "/" + $0 }
        if FolderListing.isDirectory(dir + "/bb") {
            doomed += try FolderListing.files(dir + "/bb", what: "box").filter { stale($0, prefix: "bb_", suffix: ".txt") }.map { dir + "/bb/" + $0 }
        }
        for path in doomed {
            do { try FileManager.default.removeItem(atPath: path) } catch {
                throw SpaceError.file(path: path, message: "cannot remove stale file: \(error.localizedDescription)")
            }
        }
    }

    // MARK: - Rendering

    /// Renders image `index` of `split`. The same (seed, split, index) always gives the same scene.
    public func render(index: Int, split: DatasetSplit = .train, includeMasks: Bool = false) -> RenderedScene {
        let splitID: UInt64 = split == .train ? 1 : (split == .val ? 2 : 3)
        let rng = SeededNoise(seed: seed ^ (splitID << 56) ^ (UInt64(truncatingIfNeeded: index) &* 0xD1B5_4A32_D192_ED03))
        let size = options.size
        var canvas = background(rng)
        let objects = placeObjects(rng, background: canvas)
        var masks: [[Float]] = []
        for object in objects {
            let (coverage, xs, ys) = self.coverage(of: object)
            for y in ys {
                for x in xs {
                    let i = y * size + x
                    let a = coverage[i]
                    if a == 0 { continue }
                    for c in 0..<3 { canvas[3 * i + c] += (Float(object.color[c]) - canvas[3 * i + c]) * a }
                }
            }
            if includeMasks { masks.append(coverage) }
        }
        let pixels = canvas.map { UInt8(min(max($0, 0), 255).rounded()) }
        return RenderedScene(image: RGBImage(width: size, height: size, channels: 3, pixels: pixels),
                             objects: objects, masks: includeMasks ? masks : nil)
    }

    /// A smooth background in 0...255 floats, interleaved RGB.
    private func background(_ rng: SeededNoise) -> [Float] {
        let size = options.size
        let from = hsv(rng.nextUniform(), 0.1 + 0.35 * rng.nextUniform(), 0.25 + 0.6 * rng.nextUniform())
        let to = hsv(rng.nextUniform(), 0.1 + 0.35 * rng.nextUniform(), 0.25 + 0.6 * rng.nextUniform())
        let angle = 2 * Float.pi * rng.nextUniform()
        let dx = cos(angle), dy = sin(angle)
        // Projections of the corners bound the gradient parameter.
        let s = Float(size)
        let corners = [0, s * dx, s * dy, s * dx + s * dy]
        let lo = corners.min()!, span = max(corners.max()! - lo, 1)
        var blobs: [(x: Float, y: Float, radius: Float, strength: Float, color: [Float])] = []
        for _ in 0..<(1 + Int(rng.next() % 3)) {
            blobs.append((s * rng.nextUniform(), s * rng.nextUniform(), s * (0.2 + 0.3 * rng.nextUniform()),
                          0.3 + 0.4 * rng.nextUniform(),
                          hsv(rng.nextUniform(), 0.1 + 0.35 * rng.nextUniform(), 0.25 + 0.6 * rng.nextUniform())))
        }
        var out = [Float](repeating: 0, count: size * size * 3)
        out.withUnsafeMutableBufferPointer { dst in
            for y in 0..<size {
                for x in 0..<size {
                    let px = Float(x) + 0.5, py = Float(y) + 0.5
                    let t = (px * dx + py * dy - lo) / span
                    var r = from[0] + (to[0] - from[0]) * t
                    var g = from[1] + (to[1] - from[1]) * t
                    var b = from[2] + (to[2] - from[2]) * t
                    for blob in blobs {
                        let d2 = ((px - blob.x) * (px - blob.x) + (py - blob.y) * (py - blob.y)) / (blob.radius * blob.radius)
                        if d2 > 12 { continue }   // exp(-12) < 1e-5: no visible contribution
                        let w = blob.strength * exp(-d2)
                        r += (blob.color[0] - r) * w
                        g += (blob.color[1] - g) * w
                        b += (blob.color[2] - b) * w
                    }
                    let i = 3 * (y * size + x)
                    dst[i] = r; dst[i + 1] = g; dst[i + 2] = b
                }
            }
        }
        return out
    }

    /// Objects at non-overlapping places, in saturated colours that stand out from the background
    /// under them.
    private func placeObjects(_ rng: SeededNoise, background: [Float]) -> [SceneObject] {
        let size = Float(options.size)
        let span = options.objectCount.upperBound - options.objectCount.lowerBound + 1
        let wanted = options.objectCount.lowerBound + Int(rng.next() % UInt64(span))
        let quarter = { (v: Float) -> Float in (v * 4).rounded() / 4 }
        let sizes = options.objectSize
        var objects: [SceneObject] = []
        for _ in 0..<wanted {
            let shape = options.shapes[Int(rng.next() % UInt64(options.shapes.count))]
            let w = quarter(sizes.lowerBound + (sizes.upperBound - sizes.lowerBound) * rng.nextUniform())
            let h = shape == .circle || shape == .square ? w
                : quarter(sizes.lowerBound + (sizes.upperBound - sizes.lowerBound) * rng.nextUniform())
            var placed: [Float]?
            for _ in 0..<100 {
                let cx = quarter(w / 2 + 1 + (size - w - 2) * rng.nextUniform())
                let cy = quarter(h / 2 + 1 + (size - h - 2) * rng.nextUniform())
                let clear = objects.allSatisfy { o in
                    abs(o.box[0] - cx) >= (o.box[2] + w) / 2 + options.gap || abs(o.box[1] - cy) >= (o.box[3] + h) / 2 + options.gap
                }
                if clear { placed = [cx, cy, w, h]; break }
            }
            guard let box = placed else { break }
            // Average background under the object, then a colour far enough from it.
            var mean: [Float] = [0, 0, 0]
            let px = min(max(Int(box[0]), 0), options.size - 1), py = min(max(Int(box[1]), 0), options.size - 1)
            for c in 0..<3 { mean[c] = background[3 * (py * options.size + px) + c] }
            var color = hsv(rng.nextUniform(), 0.75 + 0.25 * rng.nextUniform(), 0.8 + 0.2 * rng.nextUniform())
            for _ in 0..<20 where distance(color, mean) < 120 {
                color = hsv(rng.nextUniform(), 0.75 + 0.25 * rng.nextUniform(), 0.8 + 0.2 * rng.nextUniform())
            }
            objects.append(SceneObject(shape: shape, color: color.map { UInt8($0.rounded()) }, box: box))
        }
        return objects
    }

    /// The fraction of each pixel inside `object` (4 x 4 samples per pixel, or the centre only), and
    /// the pixel columns and rows that can be non-zero.
    func coverage(of object: SceneObject) -> (mask: [Float], xs: ClosedRange<Int>, ys: ClosedRange<Int>) {
        let size = options.size
        let cx = object.box[0], cy = object.box[1], hw = object.box[2] / 2, hh = object.box[3] / 2
        let samples = options.antialias ? 4 : 1
        let weight = 1 / Float(samples * samples)
        var out = [Float](repeating: 0, count: size * size)
        let x0 = max(0, Int((cx - hw).rounded(.down))), x1 = max(x0, min(size - 1, Int((cx + hw).rounded(.up))))
        let y0 = max(0, Int((cy - hh).rounded(.down))), y1 = max(y0, min(size - 1, Int((cy + hh).rounded(.up))))
        let offsets = (0..<samples).map { (Float($0) + 0.5) / Float(samples) }
        out.withUnsafeMutableBufferPointer { dst in
            for y in y0...y1 {
                for x in x0...x1 {
                    var inside = 0
                    for oy in offsets {
                        let v = (Float(y) + oy - cy) / hh
                        for ox in offsets where SceneGenerator.contains(object.shape, (Float(x) + ox - cx) / hw, v) { inside += 1 }
                    }
                    dst[y * size + x] = Float(inside) * weight
                }
            }
        }
        return (out, x0...x1, y0...y1)
    }

    /// Whether the point (u, v), in units of the half extents around the centre, is inside `shape`.
    static func contains(_ shape: SceneShape, _ u: Float, _ v: Float) -> Bool {
        switch shape {
        case .circle: return u * u + v * v <= 1
        case .square: return abs(u) <= 1 && abs(v) <= 1
        case .diamond: return abs(u) + abs(v) <= 1
        case .triangle: return v >= -1 && v <= 1 && abs(u) <= (v + 1) / 2   // apex up, base at the bottom
        }
    }

    private func hsv(_ h: Float, _ s: Float, _ v: Float) -> [Float] {
        let sector = h * 6
        let i = Int(sector) % 6
        let f = sector - Float(Int(sector))
        let p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f))
        let rgb: [Float]
        switch i {
        case 0: rgb = [v, t, p]
        case 1: rgb = [q, v, p]
        case 2: rgb = [p, v, t]
        case 3: rgb = [p, q, v]
        case 4: rgb = [t, p, v]
        default: rgb = [v, p, q]
        }
        return rgb.map { $0 * 255 }
    }

    private func distance(_ a: [Float], _ b: [Float]) -> Float {
        ((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2])).squareRoot()
    }
}

/// The first error raised by parallel work.
private final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: Error?
    var hasError: Bool { lock.lock(); defer { lock.unlock() }; return error != nil }
    var first: Error? { lock.lock(); defer { lock.unlock() }; return error }
    func set(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
}
