import XCTest
import SpaceCore
@testable import SpaceTrain

final class CheckpointerTests: XCTestCase {
    var dir: String!
    override func setUp() {
        dir = NSTemporaryDirectory() + "/space-ckpt-\(UUID().uuidString)"
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func sample(step: Int) throws -> Checkpoint {
        Checkpoint(model: ["w": .float(try Tensor([Float(step), 2], shape: [2])), "n": .int64(Int64Tensor(scalar: Int64(step)))],
                   optimizerFg: ["w.square_avg": try Tensor([0.5, 0.25], shape: [2])],
                   optimizerBg: ["v.step": Tensor(scalar: 3)],
                   epoch: 1, globalStep: step, batchInEpoch: 4, config: "seed: 1\n")
    }

    func testRoundTripKeepsEverything() throws {
        let path = dir + "/x.safetensors"
        try sample(step: 7).save(to: path)
        let back = try Checkpoint.load(path: path)
        XCTAssertEqual(back.model["w"]?.tensor?.array, [7, 2])
        XCTAssertEqual(back.model["n"]?.int64Tensor?.values, [7])
        XCTAssertEqual(back.optimizerFg["w.square_avg"]?.array, [0.5, 0.25])
        XCTAssertEqual(back.optimizerBg["v.step"]?.array, [3])
        XCTAssertEqual(back.epoch, 1); XCTAssertEqual(back.globalStep, 7); XCTAssertEqual(back.batchInEpoch, 4)
        XCTAssertEqual(back.config, "seed: 1\n")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/x.json"))
        // no temporary files left behind
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: dir).allSatisfy { !$0.contains(".tmp") })
    }

    func testRotationKeepsTheNewestMaxNum() throws {
        let c = Checkpointer(directory: dir, maxNum: 2)
        for s in [9, 19, 29] { try c.saveLast(try sample(step: s)) }
        XCTAssertEqual(c.checkpoints().map { ($0 as NSString).lastPathComponent }, ["model_000000020.safetensors", "model_000000030.safetensors"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/model_000000010.json"))
        XCTAssertEqual(try Checkpoint.load(path: c.latest!).globalStep, 29)
    }

    func testBestKeepsOnlyImprovements() throws {
        let c = Checkpointer(directory: dir, maxNum: 2)
        XCTAssertTrue(try c.saveBest(metric: "ap_avg", value: 0.3, minIsBetter: false, checkpoint: try sample(step: 1)))
        XCTAssertFalse(try c.saveBest(metric: "ap_avg", value: 0.2, minIsBetter: false, checkpoint: try sample(step: 2)))
        XCTAssertTrue(try c.saveBest(metric: "ap_avg", value: 0.5, minIsBetter: false, checkpoint: try sample(step: 3)))
        XCTAssertFalse(try c.saveBest(metric: "ap_avg", value: .nan, minIsBetter: false, checkpoint: try sample(step: 4)))
        XCTAssertEqual(c.bestValue("ap_avg"), 0.5)
        XCTAssertEqual(try Checkpoint.load(path: c.bestPath("ap_avg")).globalStep, 3)
        XCTAssertTrue(try c.saveBest(metric: "error_rate", value: 0.4, minIsBetter: true, checkpoint: try sample(step: 5)))
        XCTAssertTrue(try c.saveBest(metric: "error_rate", value: 0.1, minIsBetter: true, checkpoint: try sample(step: 6)))
        XCTAssertEqual(c.bestValue("error_rate"), 0.1)
    }

    func testReferenceCheckpointLoadsWithoutOptimizerState() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/parity/atari_si_b2_s100/model_legacy.pth").path
        let c = try Checkpoint.load(path: path)
        XCTAssertEqual(c.model.count, 285); XCTAssertEqual(c.globalStep, 100); XCTAssertTrue(c.optimizerFg.isEmpty)
    }

    func testTruncatedCheckpointIsAnErrorNamingTheFile() throws {
        let path = dir + "/x.safetensors"
        try sample(step: 1).save(to: path)
        let data = FileManager.default.contents(atPath: path)!
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Checkpoint.load(path: path)) { XCTAssertTrue("\($0)".contains(path), "\($0)") }
    }
}
