import XCTest
import SpaceCore
@testable import SpaceModels

/// The authors' PyTorch checkpoints load into our model exactly as the safetensors weights do.
final class CheckpointLoadingTests: XCTestCase {
    func testBothPthFormatsLoadIntoSpaceIdentically() throws {
        guard let dir = FixturePaths.parity("atari_si_b2_s100") else { XCTFail("fixture not found"); return }
        let reference = try SafeTensors.load(path: dir + "/weights.safetensors")
        var arch = SpaceArch(); arch.G = 16; arch.K = 3
        for file in ["model_zip.pth", "model_legacy.pth"] {
            let (state, epoch, step) = try WeightFiles.load(path: dir + "/" + file)
            XCTAssertEqual(epoch, 0); XCTAssertEqual(step, 100)
            let model = try Space(arch: arch)
            try model.loadStateDict(state)
            for (k, v) in model.stateDict() {
                switch (v, reference.values[k]) {
                case (.float(let a), .float(let b)?): XCTAssertEqual(a.array, b.array, "\(file) \(k)")
                case (.int64(let a), .int64(let b)?): XCTAssertEqual(a.values, b.values, "\(file) \(k)")
                default: XCTFail("\(file): \(k) missing or of another dtype")
                }
            }
        }
    }

    func testPthForAnotherArchIsRefusedNamingKeyAndShapes() throws {
        guard let dir = FixturePaths.parity("atari_si_b2_s100") else { XCTFail("fixture not found"); return }
        var arch = SpaceArch(); arch.G = 8; arch.K = 3   // the file is G = 16
        let model = try Space(arch: arch)
        let before = model.stateDict().mapValues { $0.clone() }
        let (state, _, _) = try WeightFiles.load(path: dir + "/model_legacy.pth")
        XCTAssertThrowsError(try model.loadStateDict(state)) { e in
            XCTAssertTrue("\(e)".contains("fg_module.img_encoder.offset") && "\(e)".contains("[2, 16, 16]") && "\(e)".contains("[2, 8, 8]"), "\(e)")
        }
        for (k, v) in model.stateDict() { XCTAssertEqual(v.tensor?.array, before[k]?.tensor?.array, k) }
    }

    func testMissingFileIsAClearError() {
        XCTAssertThrowsError(try WeightFiles.load(path: "/nonexistent/x.pth")) { XCTAssertTrue("\($0)".contains("/nonexistent/x.pth")) }
    }
}
