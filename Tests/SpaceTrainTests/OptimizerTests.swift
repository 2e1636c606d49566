import XCTest
import SpaceCore
@testable import SpaceTrain

final class OptimizerTests: XCTestCase {
    func param(_ v: [Float], grad g: [Float]) throws -> Tensor {
        let p = try Tensor(v, shape: [v.count], requiresGrad: true)
        p.grad = try Tensor(g, shape: [g.count])
        return p
    }

    func testRMSpropMatchesHandComputedSteps() throws {
        // alpha 0.99, eps 1e-8, lr 0.01. Step 1 with g = 2: v = 0.01 * 4 = 0.04, sqrt 0.2,
        // p = 1 - 0.01 * 2 / (0.2 + 1e-8) = 0.9. Step 2 with g = 1: v = 0.99 * 0.04 + 0.01 = 0.0496,
        // p = 0.9 - 0.01 / (sqrt(0.0496) + 1e-8) = 0.9 - 0.0449013... = 0.8550987.
        let p = try param([1], grad: [2])
        let opt = RMSprop(learningRate: 0.01)
        try opt.step([("w", p)])
        XCTAssertEqual(p.array[0], 0.9, accuracy: 1e-6)
        p.grad = try Tensor([1], shape: [1])
        try opt.step([("w", p)])
        XCTAssertEqual(p.array[0], Float(0.9 - 0.01 / (0.0496.squareRoot() + 1e-8)), accuracy: 1e-6)
        XCTAssertEqual(opt.stateDict()["w.square_avg"]?.array[0] ?? 0, 0.0496, accuracy: 1e-7)
    }

    func testAdamMatchesHandComputedSteps() throws {
        // Step 1: m = 0.1 g, v = 0.001 g^2, bias-corrected m/(sqrt v) = sign(g): p -= lr (up to eps).
        // Step 2 with g2: m = 0.09 g1 + 0.1 g2, v = 0.000999 g1^2 + 0.001 g2^2,
        // p -= lr / (1 - 0.81) * m / (sqrt(v) / sqrt(1 - 0.998001) + 1e-8).
        let p = try param([0.5, -0.5], grad: [3, -0.25])
        let opt = Adam(learningRate: 0.1)
        try opt.step([("w", p)])
        assertClose(p.array, [0.4, -0.4], atol: 1e-6)
        p.grad = try Tensor([1, 1], shape: [2])
        try opt.step([("w", p)])
        func expected(_ p1: Double, _ g1: Double, _ g2: Double) -> Float {
            let m = 0.09 * g1 + 0.1 * g2, v = 0.999 * 0.001 * g1 * g1 + 0.001 * g2 * g2
            return Float(p1 - 0.1 / (1 - 0.81) * m / (v.squareRoot() / (1 - 0.998001).squareRoot() + 1e-8))
        }
        assertClose(p.array, [expected(0.4, 3, 1), expected(-0.4, -0.25, 1)], atol: 2e-6)
        XCTAssertEqual(opt.stateDict()["w.step"]?.array, [2])
    }

    func testParametersWithoutGradientAreSkipped() throws {
        let p = try Tensor([1], shape: [1], requiresGrad: true)
        let opt = Adam(learningRate: 0.1)
        try opt.step([("w", p)])
        XCTAssertEqual(p.array, [1])
        XCTAssertTrue(opt.stateDict().isEmpty)
    }

    func testStateRoundTripContinuesIdentically() throws {
        let a = try param([1, 2], grad: [0.3, -0.7]), b = try param([1, 2], grad: [0.3, -0.7])
        let o1 = Adam(learningRate: 0.01)
        try o1.step([("w", a)])
        try b.copy(from: a)
        let o2 = Adam(learningRate: 0.01)
        try o2.loadStateDict(o1.stateDict())
        try o1.step([("w", a)]); try o2.step([("w", b)])
        XCTAssertEqual(a.array, b.array)
        XCTAssertThrowsError(try o2.loadStateDict(["w.bogus": Tensor.zeros([2])])) { XCTAssertTrue("\($0)".contains("w.bogus")) }
    }

    func testClipGradNormMatchesTorch() throws {
        // grads (3, 4) and (12): global norm 13; coefficient 1 / (13 + 1e-6).
        let a = try param([0, 0], grad: [3, 4]), b = try param([0], grad: [12])
        let norm = clipGradNorm([a, b], maxNorm: 1)
        XCTAssertEqual(norm, 13, accuracy: 1e-5)
        let c = Float(1 / (13 + 1e-6))
        assertClose(a.grad!.array + b.grad!.array, [3 * c, 4 * c, 12 * c], rtol: 1e-6)
        // Below the threshold the coefficient clamps to 1: unchanged.
        let d = try param([0], grad: [0.5])
        clipGradNorm([d], maxNorm: 1)
        XCTAssertEqual(d.grad!.array, [0.5])
    }

    func testMakeOptimizerNames() throws {
        XCTAssertTrue(try makeOptimizer(name: "Adam", learningRate: 1) is Adam)
        XCTAssertTrue(try makeOptimizer(name: "RMSprop", learningRate: 1) is RMSprop)
        XCTAssertThrowsError(try makeOptimizer(name: "SGD", learningRate: 1)) { XCTAssertTrue("\($0)".contains("SGD")) }
    }
}

func assertClose(_ a: [Float], _ b: [Float], rtol: Float = 0, atol: Float = 0, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) where abs(x - y) > atol + rtol * abs(y) {
        XCTFail("\(a) vs \(b)", file: file, line: line); return
    }
}
