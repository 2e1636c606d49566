import XCTest
import SpaceCore
@testable import SpaceModels

final class RegistryAndStickBreakingTests: XCTestCase {
    func testStickBreakingOnHandComputedMasks() throws {
        // K = 3 at one pixel with raw masks m = (0.5, 0.4, 0.9):
        // mask0 = 0.5, mask1 = 0.4 * (1 - 0.5) = 0.2, mask2 = the rest = 0.3 (the last raw mask is ignored).
        let m = try Tensor([0.5, 0.4, 0.9], shape: [1, 3, 1, 1, 1])
        let s = try SpaceBackground.stickBreaking(m)
        XCTAssertEqual(s.shape, [1, 3, 1, 1, 1])
        let v = s.array
        XCTAssertEqual(v[0], 0.5, accuracy: 1e-7); XCTAssertEqual(v[1], 0.2, accuracy: 1e-7); XCTAssertEqual(v[2], 0.3, accuracy: 1e-7)
        // K = 1: the single mask is everything.
        XCTAssertEqual(try SpaceBackground.stickBreaking(Tensor([0.25], shape: [1, 1, 1, 1, 1])).array, [1])
    }

    func testStickBreakingSumsToOneAndIsDifferentiable() throws {
        let raw = SeededNoise(seed: 3).uniform([2, 4, 1, 3, 3])
        let m = Tensor(shape: raw.shape, storage: raw.storage, requiresGrad: true)
        let s = try SpaceBackground.stickBreaking(m)
        let total = try s.sum(dim: 1).array
        for t in total { XCTAssertEqual(t, 1, accuracy: 1e-6) }
        // d(mask_1)/d(m_0) = -m_1 at each pixel
        try s.narrow(dim: 1, start: 1, length: 1).sum().backward()
        let g = m.grad!.array, mv = m.array
        for p in 0..<9 { XCTAssertEqual(g[p], -mv[9 + p], accuracy: 1e-6) }
    }

    func testRegistryBuildsSpaceAndRefusesUnknownOrDuplicateNames() throws {
        var arch = SpaceArch(); arch.G = 4; arch.K = 1
        let model = try ModelRegistry.make("SPACE", arch: arch)
        XCTAssertTrue(model is Space)
        XCTAssertThrowsError(try ModelRegistry.make("SPCAE", arch: arch)) { e in
            XCTAssertTrue("\(e)".contains("SPCAE") && "\(e)".contains("SPACE"), "\(e)")
        }
        XCTAssertThrowsError(try ModelRegistry.shared.register("SPACE") { a in try Space(arch: a) }) { e in
            XCTAssertTrue("\(e)".contains("already registered"))
        }
    }

    func testStrongDecoderWhenKIsOne() throws {
        var arch = SpaceArch(); arch.K = 1
        let model = try Space(arch: arch)
        XCTAssertTrue(model.bgModule.compDecoder is SpaceCompDecoderStrong)
        arch.K = 2
        XCTAssertTrue(try Space(arch: arch).bgModule.compDecoder is SpaceCompDecoder)
    }
}
