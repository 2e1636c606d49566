import Foundation
import XCTest
@testable import SpaceData
import SpaceCore

final class DatasetTests: XCTestCase {
    /// A small solid-colour PNG whose red value identifies it.
    private func writeTag(_ red: UInt8, to path: String, width: Int = 8, height: Int = 6) throws {
        var pixels: [UInt8] = []
        for _ in 0..<(width * height) { pixels += [red, 7, 200] }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try PNGCodec.write(RGBImage(width: width, height: height, channels: 3, pixels: pixels), to: path)
    }

    private func red(_ t: Tensor) -> UInt8 { UInt8((t.array[0] * 255).rounded()) }

    private func makeAtari() throws -> String {
        let root = try makeTemporaryDirectory(self) + "/ATARI"
        var tag: UInt8 = 1
        for game in ["SpaceInvaders-v0", "Pong-v0", "Pong", "Riverraid-v0"] {
            for split in ["train", "validation", "test"] {
                for name in ["0.png", "1.png", "10.png", "2.png"] {
                    try writeTag(tag, to: "\(root)/\(game)/\(split)/\(name)")
                    tag += 1
                }
            }
        }
        try writeBytes(Array("not a game".utf8), to: root + "/README")
        try writeBytes([0], to: root + "/Pong-v0/train/.DS_Store")
        return root
    }

    func testAtariLayoutOrderSplitsAndGamelist() throws {
        let root = try makeAtari()
        let train = try AtariDataset(root: root, split: .train, gamelist: ["SpaceInvaders-v0", "Pong-v0"])
        // Sorted as strings of "<Game>/<split>/<file>", as the reference sorts them.
        XCTAssertEqual(train.files, ["Pong-v0/train/0.png", "Pong-v0/train/1.png", "Pong-v0/train/10.png", "Pong-v0/train/2.png",
                                     "SpaceInvaders-v0/train/0.png", "SpaceInvaders-v0/train/1.png",
                                     "SpaceInvaders-v0/train/10.png", "SpaceInvaders-v0/train/2.png"])
        XCTAssertEqual(train.count, 8)
        XCTAssertEqual(train.path(at: 0), root + "/Pong-v0/train/0.png")
        let image = try train.image(at: 4)
        XCTAssertEqual(image.shape, [3, 128, 128])
        XCTAssertEqual(red(image), 1, "SpaceInvaders-v0/train/0.png was written first")
        XCTAssertFalse(train.hasBoxes)
        XCTAssertNil(try train.boxes(at: 0))

        let val = try AtariDataset(root: root, split: .val, gamelist: ["Pong-v0"])
        XCTAssertEqual(val.files.first, "Pong-v0/validation/0.png", "'val' is read from 'validation'")

        // Without a gamelist every game folder counts; "Pong-v0" sorts before "Pong" ('-' < '/').
        let all = try AtariDataset(root: root, split: .test)
        XCTAssertEqual(all.count, 16)
        XCTAssertEqual(all.files[0], "Pong-v0/test/0.png")
        XCTAssertEqual(all.files[4], "Pong/test/0.png")

        let bgr = try AtariDataset(root: root, split: .train, gamelist: ["SpaceInvaders-v0"],
                                   preprocessing: ImagePreprocessing(channelOrder: .bgr)).image(at: 0)
        XCTAssertEqual(UInt8((bgr.array[2 * 128 * 128] * 255).rounded()), 1, "red is the last plane in BGR")
        XCTAssertEqual(UInt8((bgr.array[0] * 255).rounded()), 200)
    }

    func testAtariErrorsNameThePath() throws {
        let root = try makeAtari()
        assertThrowsFileError(root + "/Breakout-v0") { try AtariDataset(root: root, split: .train, gamelist: ["Pong-v0", "Breakout-v0"]) }
        assertThrowsFileError(root + "/missing") { try AtariDataset(root: root + "/missing", split: .train) }
        try FileManager.default.removeItem(atPath: root + "/Pong/test")
        assertThrowsFileError(root + "/Pong/test") { try AtariDataset(root: root, split: .test, gamelist: ["Pong"]) }
        try FileManager.default.createDirectory(atPath: root + "/Pong/test", withIntermediateDirectories: false)
        assertThrowsFileError(root + "/Pong/test") { try AtariDataset(root: root, split: .test, gamelist: ["Pong"]) }
    }

    private func makeObj3D() throws -> String {
        let root = try makeTemporaryDirectory(self) + "/OBJ3D_SMALL"
        for (n, tag) in [(0, 10), (2, 12), (10, 20), (1, 11)] {
            try writeTag(UInt8(tag), to: "\(root)/train/\(n)-whatever.png", width: 128, height: 128)
        }
        try writeBytes(Array("notes".utf8), to: root + "/train/notes.txt")
        try writeTag(30, to: root + "/val/0-a.png", width: 64, height: 64)
        try writeBytes(Array("30, 40, 10, 12\n\n 5.5 ,6.25,3,4\r\n".utf8), to: root + "/train/bb/bb_0.txt")
        try writeBytes(Array("1,2,3,4\n".utf8), to: root + "/train/bb/bb_1.txt")
        try writeBytes([], to: root + "/train/bb/bb_2.txt")
        try writeBytes(Array("1,2,3\n".utf8), to: root + "/train/bb/bb_3.txt")
        return root
    }

    func testObj3DLayoutOrderAndBoxes() throws {
        let root = try makeObj3D()
        let train = try Obj3DDataset(root: root, split: .train)
        XCTAssertEqual(train.files, ["0-whatever.png", "1-whatever.png", "2-whatever.png", "10-whatever.png"], "sorted by the integer prefix")
        XCTAssertEqual(try (0..<4).map { red(try train.image(at: $0)) }, [10, 11, 12, 20])
        XCTAssertTrue(train.hasBoxes)
        XCTAssertEqual(try train.boxes(at: 0), [[30, 40, 10, 12], [5.5, 6.25, 3, 4]])
        XCTAssertEqual(try train.boxes(at: 2), [])
        assertThrowsFileError(root + "/train/bb/bb_3.txt") { try train.boxes(at: 3) }
        XCTAssertThrowsError(try train.image(at: 4))

        let val = try Obj3DDataset(root: root, split: .val, name: "OBJ3D_LARGE")
        XCTAssertEqual(val.name, "OBJ3D_LARGE")
        XCTAssertEqual(try val.image(at: 0).shape, [3, 128, 128], "64x64 is resized to 128x128")
        XCTAssertFalse(val.hasBoxes)
        assertThrowsFileError(root + "/val/bb") { try val.boxes(at: 0) }
    }

    func testObj3DErrors() throws {
        let root = try makeObj3D()
        assertThrowsFileError(root + "/test") { try Obj3DDataset(root: root, split: .test) }
        try FileManager.default.createDirectory(atPath: root + "/test", withIntermediateDirectories: false)
        assertThrowsFileError(root + "/test") { try Obj3DDataset(root: root, split: .test) }
        assertThrowsFileError(root + "/nowhere") { try Obj3DDataset(root: root + "/nowhere", split: .train) }
        try writeTag(1, to: root + "/test/first.png")
        assertThrowsFileError(root + "/test/first.png") { try Obj3DDataset(root: root, split: .test) }
    }

    func testBoxConversionMatchesReadBoxes() throws {
        let corners = GroundTruthBoxes.normalizedCorners([[64, 32, 16, 8]])
        let expected: [Float] = [28, 36, 56, 72].map { $0 / 128 }   // y_min, y_max, x_min, x_max
        XCTAssertEqual(corners, [expected])
        let boxes: [[Float]] = [[10.25, 20.5, 12, 30.75], [1, 2, 3, 4]]
        XCTAssertEqual(try GroundTruthBoxes.parse(GroundTruthBoxes.format(boxes)), boxes)
        XCTAssertThrowsError(try GroundTruthBoxes.parse("1,2,x,4\n"))
    }

    func testRegistry() throws {
        XCTAssertEqual(DatasetRegistry.shared.names, ["ATARI", "OBJ3D_LARGE", "OBJ3D_SMALL"])
        let root = try makeObj3D()
        let dataset = try DatasetRegistry.make("OBJ3D_SMALL", options: DatasetOptions(root: root, split: .train))
        XCTAssertEqual(dataset.count, 4)
        XCTAssertEqual(dataset.name, "OBJ3D_SMALL")
        let atari = try DatasetRegistry.make("ATARI", options: DatasetOptions(root: try makeAtari(), split: .val, gamelist: ["Pong"]))
        XCTAssertEqual(atari.count, 4)
        XCTAssertThrowsError(try DatasetRegistry.make("CLEVR", options: DatasetOptions(root: root, split: .train))) { error in
            XCTAssertTrue(String(describing: error).contains("ATARI, OBJ3D_LARGE, OBJ3D_SMALL"), "\(error)")
        }
    }

    func testUndecodableImageIsSkippedAndCounted() throws {
        let root = try makeObj3D()
        try writeBytes(Array("garbage".utf8), to: root + "/train/3-broken.png")
        let dataset = try Obj3DDataset(root: root, split: .train)
        XCTAssertEqual(dataset.count, 5)
        let warnings = WarningSink()
        let loader = try DataLoader(dataset: dataset, batchSize: 2, shuffle: false, seed: 0, workers: 2, warn: warnings.add)
        let batches = Array(loader)
        XCTAssertEqual(batches.map(\.indices), [[0, 1], [2], [4]])
        XCTAssertEqual(batches[1].skipped, [3])
        XCTAssertEqual(batches[1].images.shape, [1, 3, 128, 128])
        XCTAssertEqual(loader.skippedCount, 1)
        XCTAssertEqual(loader.skippedItems.first?.path, root + "/train/3-broken.png")
        XCTAssertEqual(warnings.messages.count, 1)
        XCTAssertTrue(warnings.messages[0].contains("3-broken.png"))
    }
}

final class WarningSink: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    var messages: [String] { lock.lock(); defer { lock.unlock() }; return list }
    var add: @Sendable (String) -> Void { { [self] m in lock.lock(); list.append(m); lock.unlock() } }
}
