import Foundation
import XCTest
@testable import SpaceData
import SpaceCore

final class PNGCodecTests: XCTestCase {
    private func decode(_ bytes: [UInt8]) throws -> RGBImage {
        try PNGCodec.decodeRGB(bytes, path: "test.png")
    }

    /// `count` pseudo-random samples in 0...max.
    private func ramp(_ pixels: Int, channels: Int, max: Int, seed: UInt32) -> [Int] {
        let b = noiseBytes(count: pixels * channels * 2, seed: seed)
        return (0..<(pixels * channels)).map { (Int(b[2 * $0]) << 8 | Int(b[2 * $0 + 1])) % (max + 1) }
    }

    func testEncoderRoundTripRGBAndRGBA() throws {
        let rgb = RGBImage(width: 13, height: 7, channels: 3, pixels: noiseBytes(count: 13 * 7 * 3, seed: 11))
        XCTAssertEqual(try decode(PNGCodec.encode(rgb)), rgb)

        let rgbaBytes = noiseBytes(count: 5 * 4 * 4, seed: 12)
        let rgba = RGBImage(width: 5, height: 4, channels: 4, pixels: rgbaBytes)
        let decoded = try decode(PNGCodec.encode(rgba))
        // Alpha is discarded, never composited: colour bytes survive even where alpha is 0.
        let expected = (0..<20).flatMap { i in rgbaBytes[(4 * i)..<(4 * i + 3)] }
        XCTAssertEqual(decoded.pixels, Array(expected))

        let dir = try makeTemporaryDirectory(self)
        try PNGCodec.write(rgb, to: dir + "/a.png")
        XCTAssertEqual(try PNGCodec.decodeRGB(contentsOf: dir + "/a.png"), rgb)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["a.png"], "no temporary file left behind")
        XCTAssertThrowsError(try PNGCodec.encode(RGBImage(width: 2, height: 2, channels: 1)))
    }

    func testGreyAtEveryBitDepth() throws {
        for depth in [1, 2, 4, 8, 16] {
            for interlaced in [false, true] {
                let (w, h) = (11, 9)
                let maxValue = (1 << depth) - 1
                let samples = ramp(w * h, channels: 1, max: maxValue, seed: UInt32(depth))
                let png = RawPNG.make(width: w, height: h, bitDepth: depth, colorType: 0, samples: samples, interlaced: interlaced)
                let image = try decode(png)
                // Low depths scale to 0...255 (PIL's L;2, L;4 and mode 1); 16-bit is PIL's I;16, clipped at 255.
                let expected = samples.map { v -> UInt8 in depth == 16 ? UInt8(min(v, 255)) : UInt8(v * 255 / maxValue) }
                XCTAssertEqual(image.pixels, expected.flatMap { [$0, $0, $0] }, "grey \(depth)-bit interlaced \(interlaced)")
            }
        }
    }

    func testRGBAndRGBA8And16() throws {
        let (w, h) = (10, 6)
        for depth in [8, 16] {
            let maxValue = (1 << depth) - 1
            let rgb = ramp(w * h, channels: 3, max: maxValue, seed: 30)
            let shift = depth - 8
            var image = try decode(RawPNG.make(width: w, height: h, bitDepth: depth, colorType: 2, samples: rgb))
            XCTAssertEqual(image.pixels, rgb.map { UInt8($0 >> shift) }, "RGB \(depth)-bit keeps the high byte")
            image = try decode(RawPNG.make(width: w, height: h, bitDepth: depth, colorType: 2, samples: rgb, interlaced: true))
            XCTAssertEqual(image.pixels, rgb.map { UInt8($0 >> shift) }, "interlaced RGB \(depth)-bit")

            // RGBA with every alpha (8-bit is exact; 16-bit is exact where opaque).
            var rgba = ramp(w * h, channels: 4, max: maxValue, seed: 31)
            if depth == 16 { for i in 0..<(w * h) where i % 2 == 0 { rgba[4 * i + 3] = maxValue } }
            image = try decode(RawPNG.make(width: w, height: h, bitDepth: depth, colorType: 6, samples: rgba))
            for i in 0..<(w * h) {
                let alpha = rgba[4 * i + 3]
                for k in 0..<3 {
                    let want = Int(rgba[4 * i + k] >> shift), got = Int(image.pixels[3 * i + k])
                    if depth == 8 || alpha == maxValue {
                        XCTAssertEqual(got, want, "RGBA \(depth)-bit pixel \(i)")
                    } else if alpha >= 4096 {
                        XCTAssertLessThanOrEqual(abs(got - want), 1, "translucent 16-bit RGBA pixel \(i)")
                    }
                }
            }
        }
    }

    func testGreyAlpha8And16() throws {
        let (w, h) = (9, 5)
        for depth in [8, 16] {
            let samples = ramp(w * h, channels: 2, max: (1 << depth) - 1, seed: 40)
            for interlaced in [false, true] {
                let image = try decode(RawPNG.make(width: w, height: h, bitDepth: depth, colorType: 4, samples: samples, interlaced: interlaced))
                let grey = (0..<(w * h)).map { UInt8(samples[2 * $0] >> (depth - 8)) }
                XCTAssertEqual(image.pixels, grey.flatMap { [$0, $0, $0] }, "grey+alpha \(depth)-bit interlaced \(interlaced)")
            }
        }
    }

    func testPaletteWithTransparency() throws {
        var palette: [UInt8] = []
        for i in 0..<256 { palette += [UInt8(i), UInt8(255 - i), UInt8((i * 7) & 0xFF)] }
        for depth in [1, 2, 4, 8] {
            let entries = 1 << depth
            let (w, h) = (13, 3)
            let samples = ramp(w * h, channels: 1, max: entries - 1, seed: 50 + UInt32(depth))
            let plte = Array(palette[0..<(3 * entries)])
            let trns = (0..<entries).map { UInt8(($0 * 37) & 0xFF) }
            let image = try decode(RawPNG.make(width: w, height: h, bitDepth: depth, colorType: 3, samples: samples,
                                                chunks: [("PLTE", plte), ("tRNS", trns)]))
            XCTAssertEqual(image.pixels, samples.flatMap { Array(plte[(3 * $0)..<(3 * $0 + 3)]) }, "palette \(depth)-bit")
        }
    }

    func testColourManagementChunksAreIgnoredAsPILDoes() throws {
        // A linear-light gAMA chunk would make libpng re-encode the values; PIL ignores it.
        let gamma: [(String, [UInt8])] = [("gAMA", RawPNG.be32(100_000))]
        let samples = [100, 150, 200, 0, 10, 20, 30, 128]
        var image = try decode(RawPNG.make(width: 2, height: 1, bitDepth: 8, colorType: 6, samples: samples, chunks: gamma))
        XCTAssertEqual(image.pixels, [100, 150, 200, 10, 20, 30])
        image = try decode(RawPNG.make(width: 2, height: 1, bitDepth: 16, colorType: 2,
                                       samples: [0x12FF, 0x8001, 0xFFFF, 0x00FF, 0x0100, 0x7F80], chunks: gamma))
        XCTAssertEqual(image.pixels, [0x12, 0x80, 0xFF, 0x00, 0x01, 0x7F])
        // A tRNS colour in a 16-bit grey image does not blank the matching pixels.
        image = try decode(RawPNG.make(width: 2, height: 1, bitDepth: 16, colorType: 0, samples: [5, 300],
                                       chunks: [("tRNS", [0, 5])]))
        XCTAssertEqual(image.pixels, [5, 5, 5, 255, 255, 255])
    }

    func testBadFilesThrowNamingThePath() throws {
        let dir = try makeTemporaryDirectory(self)
        let good = try PNGCodec.encode(RGBImage(width: 16, height: 16, channels: 3, pixels: noiseBytes(count: 768, seed: 3)))

        let cases: [(String, [UInt8])] = [
            ("text.png", Array("definitely not a picture".utf8)),
            ("empty.png", []),
            ("header-only.png", Array(good[0..<20])),
            ("truncated.png", Array(good[0..<(good.count / 2)])),
            ("corrupt.png", { var b = good; for i in 60..<80 { b[i] ^= 0x5A }; return b }()),
            ("bad-ihdr.png", RawPNG.make(width: 1, height: 1, bitDepth: 3, colorType: 0, samples: [1])),
        ]
        for (name, bytes) in cases {
            let path = dir + "/" + name
            try writeBytes(bytes, to: path)
            assertThrowsFileError(path) { try PNGCodec.decodeRGB(contentsOf: path) }
        }
        assertThrowsFileError(dir + "/missing.png") { try PNGCodec.decodeRGB(contentsOf: dir + "/missing.png") }
        // Like PIL, a file whose pixel data is complete but lacks IEND still decodes.
        XCTAssertEqual(try decode(Array(good[0..<(good.count - 12)])).pixels, try decode(good).pixels)
    }

    func testHeaderReadsIHDR() throws {
        let dir = try makeTemporaryDirectory(self)
        try writeBytes(RawPNG.make(width: 3, height: 2, bitDepth: 4, colorType: 0, samples: [0, 1, 2, 3, 4, 5], interlaced: true), to: dir + "/h.png")
        XCTAssertEqual(try PNGCodec.header(contentsOf: dir + "/h.png"),
                       PNGHeader(width: 3, height: 2, bitDepth: 4, colorType: 0, interlaced: true))
    }
}
