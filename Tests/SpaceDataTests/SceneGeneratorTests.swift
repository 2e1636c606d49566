import Foundation
import XCTest
@testable import SpaceData
import SpaceCore

final class SceneGeneratorTests: XCTestCase {
    func testRenderIsDeterministic() {
        let a = SceneGenerator(seed: 3).render(index: 17, split: .val)
        let b = SceneGenerator(seed: 3).render(index: 17, split: .val)
        XCTAssertEqual(a.image, b.image)
        XCTAssertEqual(a.objects, b.objects)
        XCTAssertNotEqual(SceneGenerator(seed: 3).render(index: 18, split: .val).image, a.image)
        XCTAssertNotEqual(SceneGenerator(seed: 3).render(index: 17, split: .train).image, a.image)
        XCTAssertNotEqual(SceneGenerator(seed: 4).render(index: 17, split: .val).image, a.image)
    }

    func testScenesHaveSeveralObjectsWithinLimits() {
        let generator = SceneGenerator(seed: 1)
        var counts = Set<Int>(), shapes = Set<SceneShape>()
        for i in 0..<200 {
            let scene = generator.render(index: i)
            XCTAssertEqual(scene.image.width, 128); XCTAssertEqual(scene.image.height, 128)
            XCTAssertTrue((1...4).contains(scene.objects.count))
            counts.insert(scene.objects.count)
            for o in scene.objects {
                shapes.insert(o.shape)
                XCTAssertTrue((14...24).contains(o.box[2]) && (14...24).contains(o.box[3]), "\(o.box)")
                XCTAssertGreaterThanOrEqual(o.box[0] - o.box[2] / 2, 0); XCTAssertLessThanOrEqual(o.box[0] + o.box[2] / 2, 128)
                XCTAssertGreaterThanOrEqual(o.box[1] - o.box[3] / 2, 0); XCTAssertLessThanOrEqual(o.box[1] + o.box[3] / 2, 128)
            }
        }
        XCTAssertEqual(counts, Set(1...4))
        XCTAssertEqual(shapes, Set(SceneShape.allCases))
    }

    func testBoxesEncloseTheirObjects() {
        for antialias in [true, false] {
            var options = SceneGeneratorOptions()
            options.antialias = antialias
            let generator = SceneGenerator(seed: 9, options: options)
            for i in 0..<50 {
                let scene = generator.render(index: i, includeMasks: true)
                let masks = scene.masks!
                for (o, mask) in zip(scene.objects, masks) {
                    let x0 = o.box[0] - o.box[2] / 2, x1 = o.box[0] + o.box[2] / 2
                    let y0 = o.box[1] - o.box[3] / 2, y1 = o.box[1] + o.box[3] / 2
                    var covered: Float = 0
                    var tight = (minX: 128, maxX: -1, minY: 128, maxY: -1)
                    for y in 0..<128 {
                        for x in 0..<128 where mask[y * 128 + x] > 0 {
                            // The pixel square [x, x+1) x [y, y+1) overlaps the box.
                            XCTAssertTrue(Float(x + 1) > x0 && Float(x) < x1 && Float(y + 1) > y0 && Float(y) < y1,
                                          "scene \(i) \(o.shape) pixel (\(x), \(y)) outside box \(o.box)")
                            covered += mask[y * 128 + x]
                            tight = (min(tight.minX, x), max(tight.maxX, x), min(tight.minY, y), max(tight.maxY, y))
                        }
                    }
                    // The object reaches (nearly) every side of its box: the box is tight. Thin tips
                    // (a triangle's apex, a diamond's points) can fall between samples.
                    let slack: Float = o.shape == .circle || o.shape == .square ? 1 : (antialias ? 2 : 4)
                    XCTAssertLessThanOrEqual(Float(tight.minX) - x0, slack); XCTAssertLessThanOrEqual(x1 - Float(tight.maxX + 1), slack)
                    XCTAssertLessThanOrEqual(Float(tight.minY) - y0, slack); XCTAssertLessThanOrEqual(y1 - Float(tight.maxY + 1), slack)
                    XCTAssertGreaterThan(covered, 0.3 * o.box[2] * o.box[3])
                    // Drawn pixels have the object's colour where fully covered.
                    if let i = mask.firstIndex(of: 1) {
                        XCTAssertEqual(Array(scene.image.pixels[(3 * i)..<(3 * i + 3)]), o.color)
                    }
                }
                // Objects never overlap.
                for a in 0..<masks.count { for b in (a + 1)..<masks.count {
                    XCTAssertFalse(zip(masks[a], masks[b]).contains { $0 > 0 && $1 > 0 })
                } }
            }
        }
    }

    func testBackgroundVaries() {
        let g = SceneGenerator(seed: 2)
        let corners = (0..<10).map { i -> [UInt8] in Array(g.render(index: i).image.pixels[0..<3]) }
        XCTAssertGreaterThan(Set(corners.map { $0.map(String.init).joined(separator: ",") }).count, 5)
        let image = g.render(index: 0).image
        XCTAssertNotEqual(Array(image.pixels[0..<3]), Array(image.pixels[(3 * 128 * 128 - 3)...]), "not a flat background")
    }

    func testWriteProducesAnOBJ3DDataset() throws {
        let root = try makeTemporaryDirectory(self) + "/GEN"
        let generator = SceneGenerator(seed: 11)
        try generator.write(root: root, counts: (train: 12, val: 3, test: 2))
        for (split, n) in [(DatasetSplit.train, 12), (.val, 3), (.test, 2)] {
            let dataset = try Obj3DDataset(root: root, split: split)
            XCTAssertEqual(dataset.count, n)
            XCTAssertEqual(dataset.files.first, "0-scene.png")
            for i in 0..<n {
                let scene = generator.render(index: i, split: split)
                XCTAssertEqual(try PNGCodec.decodeRGB(contentsOf: dataset.path(at: i)), scene.image)
                XCTAssertEqual(try dataset.boxes(at: i), scene.boxes, "box files hold the boxes exactly")
                XCTAssertEqual(try dataset.image(at: i).array, ImagePreprocessing.tensor(from: scene.image).array)
            }
        }
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: root).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])

        // Writing again needs overwrite; a smaller rewrite removes the images it no longer has.
        assertThrowsFileError(root + "/train") { try generator.write(root: root, counts: (train: 4, val: 1, test: 1)) }
        try generator.write(root: root, counts: (train: 4, val: 1, test: 1), overwrite: true)
        XCTAssertEqual(try Obj3DDataset(root: root, split: .train).count, 4)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/train/bb/bb_4.txt"))
    }

    /// A guard against pathological slowness. Optimised builds write 1000 images in about 1.5 s on two
    /// cores; debug builds (as tests run) are several times slower, hence the loose bound.
    func testWritingIsFast() throws {
        let root = try makeTemporaryDirectory(self) + "/GEN"
        let start = Date()
        try SceneGenerator(seed: 5).write(root: root, counts: (train: 200, val: 25, test: 25))
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(try Obj3DDataset(root: root, split: .train).count, 200)
        XCTAssertLessThan(seconds, 20, "250 images took \(seconds) s")
        print("SceneGenerator: 250 images in \(String(format: "%.2f", seconds)) s")
    }
}
