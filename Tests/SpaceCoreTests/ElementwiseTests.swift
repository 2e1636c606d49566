import XCTest
@testable import SpaceCore

final class ElementwiseTests: XCTestCase {
    func testBroadcastArithmeticGradients() throws {
        let a = randn([3, 1, 4], seed: 1), b = randn([5, 1], seed: 2)
        try gradCheck([a, b]) { x in try x[0] + x[1] }
        try gradCheck([a, b]) { x in try x[0] - x[1] }
        try gradCheck([a, b]) { x in try x[0] * x[1] }
        let c = try Tensor(randn([5, 1], seed: 3).array.map { $0 > 0 ? $0 + 1 : $0 - 1 }, shape: [5, 1], requiresGrad: true)
        try gradCheck([a, c]) { x in try x[0] / x[1] }
    }

    func testBroadcastShapes() throws {
        XCTAssertEqual(try broadcastShape([3, 1, 4], [5, 1], op: "t"), [3, 5, 4])
        XCTAssertThrowsError(try broadcastShape([3, 2], [3], op: "add")) { e in
            XCTAssertTrue("\(e)".contains("add") && "\(e)".contains("[3, 2]"))
        }
        let a = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]), b = try Tensor([10, 20, 30], shape: [3])
        XCTAssertEqual(try (a + b).array, [11, 22, 33, 14, 25, 36])
        let col = try Tensor([1, 2], shape: [2, 1])
        XCTAssertEqual(try (a * col).array, [1, 2, 3, 8, 10, 12])
    }

    func testUnaryGradients() throws {
        let x = randn([4, 5], seed: 4)
        let pos = try Tensor(x.array.map { abs($0) + 0.5 }, shape: [4, 5], requiresGrad: true)
        try gradCheck([x]) { $0[0].exp() }
        try gradCheck([pos]) { $0[0].log() }
        try gradCheck([pos]) { $0[0].log1p() }
        try gradCheck([pos]) { $0[0].sqrt() }
        try gradCheck([x]) { $0[0].abs() }
        try gradCheck([x]) { $0[0].sigmoid() }
        try gradCheck([x]) { $0[0].tanh() }
        try gradCheck([x]) { $0[0].softplus() }
        try gradCheck([x]) { $0[0].celu() }
        try gradCheck([x]) { $0[0].elu() }
        try gradCheck([x]) { $0[0].square() }
        try gradCheck([pos]) { $0[0].reciprocal() }
        try gradCheck([pos]) { $0[0].pow(1.5) }
        try gradCheck([x]) { (-$0[0]).affine(scale: 3, shift: 1) }
        // Clamp is not differentiable at its bounds: keep every entry 0.05 away from them.
        let away = try Tensor(x.array.map { abs($0 + 0.5) < 0.05 || abs($0 - 0.7) < 0.05 ? 0 : $0 }, shape: x.shape, requiresGrad: true)
        try gradCheck([away]) { $0[0].clamp(min: -0.5, max: 0.7) }
    }

    func testSoftplusThresholdMatchesPyTorch() throws {
        // PyTorch: softplus(x) = x for x > 20, log1p(exp(x)) otherwise; gradient exactly 1 above.
        let x = try Tensor([-30, -1, 0, 1, 19.5, 20, 20.5, 40], shape: [8], requiresGrad: true)
        let y = x.softplus()
        let expected: [Float] = [Float(Foundation.log1p(Foundation.exp(-30.0))), Float(Foundation.log1p(Foundation.exp(-1.0))),
                                 Float(Foundation.log(2.0)), Float(Foundation.log1p(Foundation.exp(1.0))),
                                 Float(Foundation.log1p(Foundation.exp(19.5))), Float(Foundation.log1p(Foundation.exp(20.0))), 20.5, 40]
        assertClose(y.array, expected, rtol: 1e-6, atol: 0)
        try y.sum().backward()
        let s = { (v: Double) in Float(1 / (1 + Foundation.exp(-v))) }
        assertClose(x.grad!.array, [s(-30), s(-1), 0.5, s(1), s(19.5), s(20), 1, 1], rtol: 1e-6, atol: 1e-12)
    }

    func testCeluEluValues() throws {
        let x = try Tensor([-2, -0.5, 0, 0.5], shape: [4])
        assertClose(x.celu(alpha: 2).array, [2 * Float(Foundation.expm1(-1.0)), 2 * Float(Foundation.expm1(-0.25)), 0, 0.5])
        assertClose(x.elu().array, [Float(Foundation.expm1(-2.0)), Float(Foundation.expm1(-0.5)), 0, 0.5])
    }
}

import Foundation
