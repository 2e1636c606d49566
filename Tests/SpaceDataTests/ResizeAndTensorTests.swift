import XCTest
@testable import SpaceData
import SpaceCore

final class ResizeAndTensorTests: XCTestCase {
    private func hexBytes(_ s: String) -> [UInt8] {
        let chars = Array(s.utf8)
        return stride(from: 0, to: chars.count, by: 2).map { UInt8(String(decoding: chars[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
    }

    func testMatchesPillowBilinear() {
        for f in PILResizeFixture.all {
            let out = PILResize.bilinear(f.input, width: f.ow, height: f.oh)
            let label = "\(f.w)x\(f.h)x\(f.c) -> \(f.ow)x\(f.oh) seed \(f.seed)"
            XCTAssertEqual(out.width, f.ow); XCTAssertEqual(out.height, f.oh); XCTAssertEqual(out.channels, f.c)
            for (offset, value) in f.picks { XCTAssertEqual(out.pixels[offset], value, "\(label) byte \(offset)") }
            if let full = f.full { XCTAssertEqual(out.pixels, hexBytes(full), label) }
            XCTAssertEqual(PNGChunks.crc32(out.pixels), f.crc, label)
            let newer = PILResize.bilinear(f.input, width: f.ow, height: f.oh, order: .pillow13)
            XCTAssertEqual(PNGChunks.crc32(newer.pixels), f.crc13, "Pillow 13 order: " + label)
        }
    }

    func testSameSizeIsACopy() {
        let image = RGBImage(width: 128, height: 128, channels: 3, pixels: noiseBytes(count: 128 * 128 * 3, seed: 9))
        XCTAssertEqual(PILResize.bilinear(image, width: 128, height: 128), image)
    }

    func testConstantImageStaysConstant() {
        let image = RGBImage(width: 33, height: 71, channels: 3, pixels: [UInt8](repeating: 77, count: 33 * 71 * 3))
        XCTAssertTrue(PILResize.bilinear(image, width: 128, height: 128).pixels.allSatisfy { $0 == 77 })
    }

    func testTensorLayoutScaleAndBGR() throws {
        let pixels: [UInt8] = [0, 51, 255, 10, 20, 30, 1, 2, 3, 254, 128, 64]  // 2x2 RGB
        let image = RGBImage(width: 2, height: 2, channels: 3, pixels: pixels)
        let rgb = ImagePreprocessing.tensor(from: image, channelOrder: .rgb)
        XCTAssertEqual(rgb.shape, [3, 2, 2])
        let r = rgb.array
        XCTAssertEqual(Array(r[0..<4]), [0, 10, 1, 254].map { Float(Double($0) / 255) })   // red plane
        XCTAssertEqual(Array(r[4..<8]), [51, 20, 2, 128].map { Float(Double($0) / 255) })
        XCTAssertEqual(Array(r[8..<12]), [255, 30, 3, 64].map { Float(Double($0) / 255) })
        XCTAssertEqual(r[0], 0); XCTAssertEqual(r[8], 1)

        let bgr = ImagePreprocessing.tensor(from: image, channelOrder: .bgr).array
        XCTAssertEqual(Array(bgr[0..<4]), Array(r[8..<12]), "BGR puts blue first")
        XCTAssertEqual(Array(bgr[4..<8]), Array(r[4..<8]))
        XCTAssertEqual(Array(bgr[8..<12]), Array(r[0..<4]))

        XCTAssertEqual(try ImagePreprocessing.image(from: rgb), image)
        XCTAssertEqual(try ImagePreprocessing.image(from: ImagePreprocessing.tensor(from: image, channelOrder: .bgr), channelOrder: .bgr), image)
    }

    func testLoadResizesToModelInput() throws {
        let dir = try makeTemporaryDirectory(self)
        let frame = RGBImage(width: 160, height: 210, channels: 3, pixels: noiseBytes(count: 160 * 210 * 3, seed: 2))
        try PNGCodec.write(frame, to: dir + "/frame.png")
        let t = try ImagePreprocessing(size: 128, channelOrder: .rgb).load(path: dir + "/frame.png")
        XCTAssertEqual(t.shape, [3, 128, 128])
        let fixture = PILResizeFixture.all.first { $0.w == 160 && $0.h == 210 && $0.seed == 2 }!
        let expected = ImagePreprocessing.tensor(from: PILResize.bilinear(frame, width: 128, height: 128))
        XCTAssertEqual(t.array, expected.array)
        XCTAssertEqual(PNGChunks.crc32(try ImagePreprocessing.image(from: t).pixels), fixture.crc)
    }
}
