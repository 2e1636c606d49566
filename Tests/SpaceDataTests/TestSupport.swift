import Foundation
import XCTest
@testable import SpaceData
import SpaceCore

/// A fresh temporary folder, removed when the test ends.
func makeTemporaryDirectory(_ test: XCTestCase, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let path = NSTemporaryDirectory() + "spacedata-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Asserts that `body` throws `SpaceError.file` whose path is `path`.
func assertThrowsFileError<T>(_ path: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected an error naming \(path)", file: file, line: line)
    } catch let SpaceError.file(thrownPath, message) {
        XCTAssertEqual(thrownPath, path, "message: \(message)", file: file, line: line)
    } catch {
        XCTFail("expected SpaceError.file naming \(path), got \(error)", file: file, line: line)
    }
}

/// The xorshift32 byte stream the Pillow fixture script uses for its input images.
func noiseBytes(count: Int, seed: UInt32) -> [UInt8] {
    var s = seed
    var out = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        s ^= s << 13; s ^= s >> 17; s ^= s << 5
        out[i] = UInt8(s & 0xFF)
    }
    return out
}

/// A minimal PNG writer independent of libpng: any colour type, bit depth and Adam7 interlacing,
/// filter type 0 and stored (uncompressed) deflate blocks. Used to produce every kind of input.
enum RawPNG {
    static func channels(_ colorType: Int) -> Int { [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colorType]! }

    /// `samples`: row-major, `channels(colorType)` values per pixel, each below 2^bitDepth.
    static func make(width: Int, height: Int, bitDepth: Int, colorType: Int, samples: [Int],
                     interlaced: Bool = false, chunks: [(String, [UInt8])] = [], trailing: [(String, [UInt8])] = []) -> [UInt8] {
        let c = channels(colorType)
        precondition(samples.count == width * height * c)
        var raw: [UInt8] = []
        let passes: [(Int, Int, Int, Int)] = interlaced
            ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            : [(0, 0, 1, 1)]
        for (x0, y0, dx, dy) in passes {
            let xs = Array(stride(from: x0, to: width, by: dx)), ys = Array(stride(from: y0, to: height, by: dy))
            if xs.isEmpty || ys.isEmpty { continue }
            for y in ys {
                raw.append(0)
                var bits = 0, acc = 0
                var row: [UInt8] = []
                for x in xs {
                    for k in 0..<c {
                        let v = samples[(y * width + x) * c + k]
                        if bitDepth == 16 { row += [UInt8(v >> 8), UInt8(v & 0xFF)]; continue }
                        acc = (acc << bitDepth) | v
                        bits += bitDepth
                        if bits == 8 { row.append(UInt8(acc)); acc = 0; bits = 0 }
                    }
                }
                if bits > 0 { row.append(UInt8(acc << (8 - bits))) }
                raw += row
            }
        }
        var ihdr = be32(width) + be32(height)
        ihdr += [UInt8(bitDepth), UInt8(colorType), 0, 0, interlaced ? 1 : 0]
        var png: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
        png += chunk("IHDR", ihdr)
        for (t, d) in chunks { png += chunk(t, d) }
        png += chunk("IDAT", zlibStored(raw))
        for (t, d) in trailing { png += chunk(t, d) }
        png += chunk("IEND", [])
        return png
    }

    static func be32(_ v: Int) -> [UInt8] { [UInt8((v >> 24) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be32(data.count) + body + be32(Int(PNGChunks.crc32(body)))
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var pos = 0
        repeat {
            let n = min(65535, data.count - pos)
            let last = pos + n == data.count
            out += [last ? 1 : 0, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[pos..<(pos + n)]
            pos += n
        } while pos < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        return out + be32(Int(b << 16 | a))
    }
}

/// A dataset of in-memory images for loader tests; indices listed in `failing` throw.
final class SyntheticDataset: SceneDataset, @unchecked Sendable {
    let name = "SYNTHETIC"
    let count: Int
    let imageSize = 4
    let failing: Set<Int>
    init(count: Int, failing: Set<Int> = []) { self.count = count; self.failing = failing }
    func path(at index: Int) -> String { "synthetic/\(index)" }
    func image(at index: Int) throws -> Tensor {
        if failing.contains(index) { throw SpaceError.file(path: path(at: index), message: "cannot decode PNG: broken") }
        // A little work so threads interleave.
        usleep(UInt32((index * 7919) % 300))
        return Tensor.full([3, imageSize, imageSize], Float(index))
    }
}
