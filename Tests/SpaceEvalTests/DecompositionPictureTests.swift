import XCTest
import SpaceCore
import SpaceModels
@testable import SpaceEval

final class BitmapFontTests: XCTestCase {
    func testGlyphsAreFiveBySeven() {
        for (character, rows) in BitmapFont.glyphs {
            XCTAssertEqual(rows.count, BitmapFont.glyphHeight, "\(character)")
            XCTAssertTrue(rows.allSatisfy { $0 < 32 }, "\(character) has a row wider than five pixels")
        }
        // Lower case is drawn in capitals; unknown characters as '?'.
        XCTAssertEqual(BitmapFont.glyph("a"), BitmapFont.glyph("A"))
        XCTAssertEqual(BitmapFont.glyph("\u{00e9}"), BitmapFont.glyph("?"))
        XCTAssertNotEqual(BitmapFont.glyph("0"), BitmapFont.glyph("O"))
    }

    func testDrawTextPutsTheGlyphWhereAsked() {
        let (h, w) = (20, 30)
        var pixels = [Float](repeating: 1, count: 3 * h * w)
        drawText("L", into: &pixels, height: h, width: w, x: 3, y: 2, scale: 2, rgb: (0, 0, 1))
        // 'L': the left column and the bottom row, each font pixel a 2x2 square.
        func blue(_ y: Int, _ x: Int) -> Bool { pixels[y * w + x] == 0 && pixels[h * w + y * w + x] == 0 && pixels[2 * h * w + y * w + x] == 1 }
        for y in 2..<16 { XCTAssertTrue(blue(y, 3) && blue(y, 4), "left stroke at row \(y)") }
        for x in 3..<13 { XCTAssertTrue(blue(14, x) && blue(15, x), "bottom stroke at column \(x)") }
        XCTAssertFalse(blue(2, 5), "nothing right of the stroke on the first row")
        let painted = (0..<(h * w)).filter { pixels[$0] == 0 }.count
        XCTAssertEqual(painted, (7 + 4) * 4, "seven pixels of stem and four of foot, 4 screen pixels each")
        XCTAssertEqual(BitmapFont.width(of: "AB", scale: 2), 22)
        // Text running off the picture is cut, not a crash.
        drawText("WIDE TEXT", into: &pixels, height: h, width: w, x: 25, y: 15, scale: 3)
    }
}

final class DecompositionPictureTests: XCTestCase {
    /// A real SPACE output on two images, with the boxes replaced by known ones.
    func output(G: Int, K: Int) throws -> (Tensor, SpaceOutput) {
        var arch = SpaceArch()
        arch.G = G; arch.K = K
        let model = try Space(arch: arch)
        model.eval()
        let x = SeededNoise(seed: 3).uniform([2, 3, 128, 128])
        var out = try Tensor.noGrad { try model(x, globalStep: 100_000, noise: SeededNoise(seed: 4)) }
        let cells = G * G
        var prob = [Float](repeating: 0.1, count: 2 * cells), where_ = [Float](repeating: 0, count: 2 * cells * 4)
        // Image 0: a sure box (p = 1) on the left half and a doubtful one (p = 0.5 + eps) at the bottom right.
        prob[0] = 1.0; where_[0..<4] = [0.25, 0.25, -0.5, 0.0]
        prob[1] = 0.5001; where_[4..<8] = [0.2, 0.2, 0.5, 0.5]
        // Image 1: a box running off the top-left corner, p = 0.75.
        prob[cells] = 0.75; where_[(cells * 4)..<(cells * 4 + 4)] = [0.5, 0.5, -1.0, -1.0]
        // and one wholly outside the picture (a shift past the edge), which must be skipped.
        prob[cells + 1] = 0.9; where_[(cells * 4 + 4)..<(cells * 4 + 8)] = [0.1, 0.1, 1.3, 1.3]
        out.foreground.zPresProb = try Tensor(prob, shape: [2, cells, 1])
        out.foreground.zWhere = try Tensor(where_, shape: [2, cells, 4])
        return (x, out)
    }

    func testLayoutBoxesColoursAndCounts() throws {
        let (x, out) = try output(G: 4, K: 2)
        let picture = DecompositionPicture(scale: 2)
        let truth = [[DetectionBox(yMin: 0, yMax: 0.1, xMin: 0, xMax: 0.1)], []]
        let grid = try picture.render(images: x, output: out, truth: truth)
        XCTAssertEqual(DecompositionPicture.titles(components: 2),
                       ["input", "reconstruction", "foreground", "background", "alpha", "boxes",
                        "component 1", "component 2", "mask 1", "mask 2"])
        // 10 columns of 256-pixel tiles, 4-pixel gaps, 8-pixel margins; a header, two rows and a legend.
        let (H, W) = (grid.shape[1], grid.shape[2])
        XCTAssertEqual(grid.shape[0], 3)
        XCTAssertEqual(W, 2 * 8 + 10 * 256 + 9 * 4)
        let header = 18 + 8, legend = 18 + 16
        XCTAssertEqual(H, header + 2 * 256 + 4 + legend)
        let p = grid.array, plane = H * W
        func rgb(_ y: Int, _ x: Int) -> [Float] { [p[y * W + x], p[plane + y * W + x], p[2 * plane + y * W + x]] }
        let boxesLeft = 8 + 5 * (256 + 4)

        // The sure box of image 0: x from 0.125 to 0.375 of the tile, y from 0.375 to 0.625; green.
        let green = rgb(header + Int(0.5 * 256), boxesLeft + Int(0.125 * 256))
        XCTAssertEqual(green, picture.colourArray(1))
        XCTAssertEqual(green[0], 0, accuracy: 1e-6); XCTAssertGreaterThan(green[1], 0.8)
        // Two pixels thick at scale 2, and its inside left as the image.
        XCTAssertEqual(rgb(header + 128, boxesLeft + 33), green)
        XCTAssertNotEqual(rgb(header + 128, boxesLeft + 40), green)
        // The doubtful box is red; the input tile carries no boxes.
        let red = rgb(header + Int(0.75 * 256), boxesLeft + Int(0.65 * 256))
        XCTAssertEqual(red, picture.colourArray(0.5001), accuracy: 1e-4)
        XCTAssertEqual(red, [1, 0, 0], accuracy: 1e-3)
        XCTAssertNotEqual(rgb(header + 128, 8 + 32), green)
        // Image 1's box runs off the tile's corner: drawn up to the edge, in yellow-orange (p = 0.75).
        let top1 = header + 256 + 4
        XCTAssertEqual(rgb(top1 + 10, boxesLeft + 63), picture.colourArray(0.75))
        // The count label (white on black) sits at the bottom-left of each boxes tile.
        let labelRow = (top1 - 4 - 18)..<(top1 - 4)
        XCTAssertTrue(labelRow.contains { y in (boxesLeft..<(boxesLeft + 100)).contains { rgb(y, $0) == [1, 1, 1] } })
        XCTAssertEqual(rgb(top1 - 4 - 18, boxesLeft + 1), [0, 0, 0])
    }

    func testColoursRunFromRedToGreen() {
        let picture = DecompositionPicture(threshold: 0.5)
        XCTAssertEqual(picture.colourArray(0.5), [1, 0, 0])
        XCTAssertEqual(picture.colourArray(0.75), [1, 1, 0])
        XCTAssertEqual(picture.colourArray(1), [0, 0.85, 0])
        XCTAssertEqual(picture.colourArray(0.2), [1, 0, 0], "below the threshold clamps to red")
    }

    func testOneImageAndOneComponent() throws {
        let (x, out) = try output(G: 4, K: 1)
        let grid = try DecompositionPicture(scale: 1).render(images: x, output: out, count: 1)
        XCTAssertEqual(grid.shape[2], 2 * 4 + 8 * 128 + 7 * 2)
        XCTAssertEqual(grid.shape[1], (9 + 4) + 128 + (9 + 8))
        XCTAssertTrue(grid.array.allSatisfy { $0 >= 0 && $0 <= 1 })
    }
}

private extension DecompositionPicture {
    func colourArray(_ p: Double) -> [Float] { let c = colour(confidence: p); return [c.0, c.1, c.2] }
}

private func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}
