import Foundation
import XCTest
import SpaceCore
import SpaceData
import SpaceEval
import SpaceModels
import SpaceTrain

/// The `space` command end to end on the built-in dataset: make-dataset, train (with evaluation and
/// checkpoints), show, eval, score, convert, and config errors.
final class CommandLineTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var work: String!

    /// The `space` binary built beside this test bundle.
    var binary: URL {
        var dir = Bundle(for: CommandLineTests.self).bundleURL
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("space").path) && dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("space")
    }

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "space-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    @discardableResult
    func space(_ args: [String], expect status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: work)
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let out = String(decoding: data, as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, status, "space \(args.joined(separator: " ")):\n\(out)", file: file, line: line)
        return out
    }

    /// Overrides that keep a demo run tiny and inside the temporary folder.
    var tiny: [String] {
        ["arch.G", "4", "arch.K", "2", "train.batch_size", "4", "train.max_steps", "3", "train.print_every", "1",
         "train.save_every", "2", "train.eval_every", "2", "train.num_workers", "1",
         "eval_cfg.train.num_samples.ap", "8", "eval_cfg.train.num_samples.mse", "8", "eval_cfg.train.batch_size", "4",
         "eval_cfg.test.batch_size", "4", "show.indices", "[0, 1]"]
    }

    func testTrainShowEvalOnTheBuiltInDataset() throws {
        try space(["make-dataset", "--root", "data/demo", "--train", "16", "--val", "8", "--test", "8"])
        let config = Self.repo.appendingPathComponent("configs/demo.yaml").path
        let trainOut = try space(["train", "--config", config] + tiny)
        XCTAssertTrue(trainOut.contains("] step 3/"), trainOut)
        XCTAssertTrue(trainOut.contains("ap_avg"), "evaluation during training: \(trainOut)")
        let ckdir = work + "/output/checkpoints/demo"
        let names = try FileManager.default.contentsOfDirectory(atPath: ckdir)
        XCTAssertTrue(names.contains("model_000000003.safetensors") && names.contains("config.yaml"), "\(names)")
        XCTAssertTrue(names.contains("best_ap_avg.safetensors") && names.contains("best_error_rate.json"), "\(names)")
        // logs: event file with the scalars, CSV with the same
        let events = try EventFileReader.eventFiles(in: work + "/output/logs/demo")
        XCTAssertEqual(events.count, 1)
        let reader = try EventFileReader(path: events[0])
        XCTAssertEqual(Set(reader.scalars.filter { $0.tag == "train/loss" }.map { $0.step }), [0, 1, 2, 3])
        XCTAssertFalse(reader.images.isEmpty)
        XCTAssertTrue(reader.scalars.contains { $0.tag == "val/ap_avg" && $0.step == 2 })
        let csv = try String(contentsOfFile: work + "/output/logs/demo/scalars.csv", encoding: .utf8)
        XCTAssertTrue(csv.contains(",train/elbo,"))

        // show: a picture of 2 rows x (6 + 2K) tiles, not constant, boxes drawn where predicted
        let showOut = try space(["show", "--config", config] + tiny)
        let png = work + "/output/demo/demo.png"
        XCTAssertTrue(showOut.contains(png), showOut)
        let image = try PNGCodec.decodeRGB(contentsOf: png)
        // 10 columns of 256-pixel tiles, 4-pixel gaps, 8-pixel margins; a 26-pixel title row, two rows
        // of tiles and a 34-pixel legend.
        XCTAssertEqual(image.width, 10 * 256 + 9 * 4 + 2 * 8)
        XCTAssertEqual(image.height, 26 + 2 * 256 + 4 + 34)
        XCTAssertGreaterThan(Set(image.pixels).count, 50)
        try checkBoxesDrawn(image: image, config: config)

        // eval: the reference's table and results JSON
        let evalOut = try space(["eval", "--config", config] + tiny + ["eval.checkpoint", "last"])
        XCTAssertTrue(evalOut.contains("Average:") && evalOut.contains("Accuracy:"), evalOut)
        let results = try FileManager.default.contentsOfDirectory(atPath: work + "/output/eval/demo").filter { $0.hasPrefix("results_") }
        XCTAssertEqual(results.count, 1)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/output/eval/demo/" + results[0]))) as! [String: Any]
        for key in ["APs", "iou_thresholds", "AP average", "error_rate", "accuracy", "perfect", "undercount", "overcount"] {
            XCTAssertNotNil(json[key], key)
        }
        XCTAssertEqual((json["APs"] as? [Double])?.count, 10)

        // resume: a second train call continues from the last checkpoint
        let resumed = try space(["train", "--config", config] + tiny + ["train.max_steps", "4"])
        XCTAssertTrue(resumed.contains("Resumed from") && resumed.contains("] step 4/"), resumed)
    }

    /// The demo config exactly as shipped (its G, K, batch, schedules) trains two steps through `space train`
    /// on the built-in scenes, evaluates, and prints the progress line.
    func testShippedDemoConfigTrainsOneStep() throws {
        try space(["make-dataset", "--root", "data/demo", "--train", "8", "--val", "4", "--test", "4"])
        let config = Self.repo.appendingPathComponent("configs/demo.yaml").path
        let out = try space(["train", "--config", config, "train.max_steps", "1", "train.num_workers", "1"])
        XCTAssertTrue(out.contains("[demo] step 0/1") && out.contains("objects/image"), out)
        XCTAssertTrue(out.contains("ap_dot5"), out)
        let names = try FileManager.default.contentsOfDirectory(atPath: work + "/output/checkpoints/demo")
        XCTAssertTrue(names.contains("model_000000000.safetensors") || names.contains("model_000000001.safetensors"), "\(names)")
    }

    /// `make-dataset --shapes` draws only the shapes named (circles have equal width and height; the
    /// default set, with diamonds and triangles, does not); an unknown name is refused, naming it.
    func testMakeDatasetShapes() throws {
        func boxes(_ root: String) throws -> [[Double]] {
            let dir = work + "/" + root + "/train/bb"
            return try FileManager.default.contentsOfDirectory(atPath: dir).flatMap { name in
                try String(contentsOfFile: dir + "/" + name, encoding: .utf8).split(separator: "\n")
                    .map { $0.split(separator: ",").map { Double($0)! } }
            }
        }
        try space(["make-dataset", "--root", "circles", "--train", "24", "--val", "2", "--test", "2", "--shapes", "circle"])
        let circles = try boxes("circles")
        XCTAssertGreaterThan(circles.count, 24)
        XCTAssertTrue(circles.allSatisfy { $0[2] == $0[3] }, "\(circles)")
        try space(["make-dataset", "--root", "all", "--train", "24", "--val", "2", "--test", "2"])
        XCTAssertTrue(try boxes("all").contains { $0[2] != $0[3] })
        let out = try space(["make-dataset", "--root", "bad", "--shapes", "circle,blob"], expect: 64)
        XCTAssertTrue(out.contains("unknown shape 'blob'"), out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/bad"))
    }

    /// The boxes the model predicts for image 0 are drawn, in their confidence's colour, in the boxes
    /// tile of the picture (tiles magnified twice).
    func checkBoxesDrawn(image: RGBImage, config: String) throws {
        let cfg = try SpaceConfig.load(configFile: config, overrides: tiny)
        let model = try Space(arch: cfg.arch)
        let dir = work + "/output/checkpoints/demo"
        try model.loadStateDict(try Checkpoint.load(path: Checkpointer(directory: dir, maxNum: 5).latest!).model)
        model.eval()
        let ds = try Obj3DDataset(root: work + "/data/demo", split: .val)
        let x = try Tensor.stack([try ds.image(at: 0), try ds.image(at: 1)], dim: 0)
        let out = try Tensor.noGrad { try model(x, globalStep: Evaluator.evaluationStep, noise: SeededNoise(seed: UInt64(cfg.seed))) }
        let boxes = boxesFromLatents(zWhere: Array(out.foreground.zWhere.array.prefix(16 * 4)), zPresProb: Array(out.foreground.zPresProb.array.prefix(16)))
        let picture = DecompositionPicture(scale: 2)
        let colours = boxes.map { b -> [Int] in let c = picture.colour(confidence: b.confidence); return [c.0, c.1, c.2].map { Int($0 * 255 + 0.5) } }
        let tile = 256, tileX0 = 8 + 5 * (tile + 4), tileY0 = 26, labelTop = tile - 18
        func pixel(_ x: Int, _ y: Int) -> [Int] { let i = ((tileY0 + y) * image.width + tileX0 + x) * 3; return image.pixels[i..<(i + 3)].map { Int($0) } }
        for b in boxes {
            let y = Int((b.yMin * Double(tile)).rounded(.down)), x0 = Int((b.xMin * Double(tile)).rounded(.down))
            let x1 = Int((b.xMax * Double(tile)).rounded(.up)) - 1
            guard y >= 0, y < labelTop, x0 >= 0, x1 < tile, x1 >= x0 else { continue }
            let p = pixel((x0 + x1) / 2, y)
            XCTAssertTrue(colours.contains { c in zip(c, p).allSatisfy { abs($0 - $1) <= 1 } }, "top edge of a predicted box: \(p)")
        }
        if boxes.isEmpty {
            // no box predicted: the boxes tile is the input tile (above the count label)
            for y in stride(from: 0, to: labelTop, by: 9) { for x in stride(from: 0, to: tile, by: 9) {
                let i = ((tileY0 + y) * image.width + 8 + x) * 3
                XCTAssertEqual(pixel(x, y), image.pixels[i..<(i + 3)].map { Int($0) })
            } }
        }
    }

    func testScoreBoxFiles() throws {
        try FileManager.default.createDirectory(atPath: work + "/gt", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: work + "/pred", withIntermediateDirectories: true)
        try "64,64,20,20\n10,10,8,8\n".write(toFile: work + "/gt/bb_0.txt", atomically: true, encoding: .utf8)
        try "64,64,20,20,0.9\n100,100,8,8,0.5\n".write(toFile: work + "/pred/bb_0.txt", atomically: true, encoding: .utf8)
        let out = try space(["score", "--pred", "pred", "--gt", "gt", "--output", "r.json"])
        // one hit (conf 0.9) then a miss: precision 1, 1/2; recall 1/2 -> AP = 6/11 at every threshold
        XCTAssertTrue(out.contains("0.5455"), out)
        XCTAssertTrue(out.contains("Perfect:        1"), out)
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/r.json"))
        try "64,64,20\n".write(toFile: work + "/pred/bb_0.txt", atomically: true, encoding: .utf8)
        let bad = try space(["score", "--pred", "pred", "--gt", "gt"], expect: 1)
        XCTAssertTrue(bad.contains("pred/bb_0.txt") && bad.contains("line 1"), bad)
    }

    /// The authors' checkpoint, converted or not, evaluates and shows like one trained here.
    func testReferenceCheckpointEvaluatesAndShows() throws {
        try space(["make-dataset", "--root", "data/demo", "--train", "4", "--val", "4", "--test", "4"])
        let pth = Self.repo.appendingPathComponent("Tests/Fixtures/parity/atari_si_b2_s100/model_legacy.pth").path
        try space(["convert", pth, "converted.safetensors"])
        let config = Self.repo.appendingPathComponent("configs/atari_spaceinvaders.yaml").path
        let common = ["dataset", "OBJ3D_SMALL", "dataset_roots.OBJ3D_SMALL", "data/demo", "eval_cfg.test.batch_size", "4",
                      "show.indices", "[0]"]
        var aps: [[Double]] = []
        for (i, ckpt) in [pth, "converted.safetensors"].enumerated() {
            try space(["eval", "--config", config] + common + ["resume_ckpt", ckpt, "evaldir", "eval\(i)"])
            let dir = work + "/eval\(i)/atari_spaceinvaders"
            let file = try FileManager.default.contentsOfDirectory(atPath: dir)[0]
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/" + file))) as! [String: Any]
            aps.append(json["APs"] as! [Double])
            try space(["show", "--config", config] + common + ["resume_ckpt", ckpt, "demodir", "demo\(i)"])
        }
        XCTAssertEqual(aps[0], aps[1])
        let a = try PNGCodec.decodeRGB(contentsOf: work + "/demo0/atari_spaceinvaders.png")
        let b = try PNGCodec.decodeRGB(contentsOf: work + "/demo1/atari_spaceinvaders.png")
        XCTAssertEqual(a.pixels, b.pixels)
        // The show picture: 6 + 2K = 12 titled columns of 256-pixel tiles, 4-pixel gaps, 8-pixel margins.
        XCTAssertEqual(a.width, 12 * 256 + 11 * 4 + 2 * 8)
    }

    func testConfigErrorsExitWithStatus2AndWriteNothing() throws {
        let config = Self.repo.appendingPathComponent("configs/demo.yaml").path
        let out = try space(["train", "--config", config, "train.batchsize", "4"], expect: 2)
        XCTAssertTrue(out.contains("train.batch_size"), out)
        let out2 = try space(["train", "--config", config, "device", "cuda:0"], expect: 2)
        XCTAssertTrue(out2.contains("cpu"), out2)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work), [])
        let missing = try space(["train", "--config", config], expect: 1)
        XCTAssertTrue(missing.contains("data/demo"), missing)
    }
}
