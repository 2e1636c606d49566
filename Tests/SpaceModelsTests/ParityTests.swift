import XCTest
import SpaceCore
@testable import SpaceModels
@testable import SpaceTrain

/// Replays the recorded reference steps: every output, every gradient (after clipping) and the
/// parameters after one RMSprop and one Adam step must match within the fixtures' float32 tolerances.
final class ParityTests: XCTestCase {
    func check(_ name: String) throws {
        guard let dir = FixturePaths.parity(name) else { XCTFail("fixture \(name) not found"); return }
        let result = try ParityFixture(directory: dir).run()
        for row in result.rows where !row.passed {
            XCTFail("\(name): \(row.kind.rawValue) \(row.name): worst error \(row.worstError) > tolerance \(row.tolerance) \(row.note)")
        }
        XCTAssertGreaterThan(result.rows.filter { $0.kind == .gradient }.count, 200)
        XCTAssertGreaterThan(result.rows.filter { $0.kind == .afterStep }.count, 200)
        XCTAssertEqual(result.rows.filter { $0.kind == .output }.count, 20)
    }

    /// Atari Space Invaders, G = 16, K = 3, step 100: fix-alpha active, no boundary loss.
    func testAtariSpaceInvadersStep() throws { try check("atari_si_b2_s100") }

    /// 3D room small, G = 8, K = 5, step 12000: boundary loss on, learned alpha, priors past annealing.
    func testRoomSmallStep() throws { try check("room_small_b2_s12000") }

    /// The model's state keys are exactly the reference's state_dict keys, shapes included.
    func testStateKeysMatchTheReference() throws {
        for name in ["atari_si_b2_s100", "room_small_b2_s12000"] {
            guard let dir = FixturePaths.parity(name) else { XCTFail("fixture \(name) not found"); continue }
            let fixture = try ParityFixture(directory: dir)
            let model = try Space(arch: fixture.arch)
            let ours = model.stateDict()
            XCTAssertEqual(Set(ours.keys), Set(fixture.weights.keys), name)
            for (k, v) in fixture.weights.values { XCTAssertEqual(ours[k]?.shape, v.shape, k) }
        }
    }

    /// A mismatched weight file is refused naming the key and both shapes, and nothing is loaded.
    func testLoadingMismatchedWeightsNamesKeyAndShapes() throws {
        guard let dir = FixturePaths.parity("room_small_b2_s12000") else { XCTFail("fixture not found"); return }
        let fixture = try ParityFixture(directory: dir)
        var arch = fixture.arch
        arch.G = 16  // a different grid: the offset buffer changes shape
        let model = try Space(arch: arch)
        let before = model.fgModule.imgEncoder.namedParameters().first!.1.array
        XCTAssertThrowsError(try model.loadStateDict(fixture.weights.values)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("fg_module.img_encoder.offset"), text)
            XCTAssertTrue(text.contains("[2, 16, 16]") && text.contains("[2, 8, 8]"), text)
        }
        XCTAssertEqual(model.fgModule.imgEncoder.namedParameters().first!.1.array, before)
    }
}
