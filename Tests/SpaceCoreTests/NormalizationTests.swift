import Foundation
import XCTest
@testable import SpaceCore

final class NormalizationTests: XCTestCase {
    // MARK: group norm

    func testGroupNormGradients() throws {
        for (shape, groups) in [([3, 4, 5], 1), ([3, 4, 5], 2), ([2, 4, 3, 3], 4), ([2, 6, 2, 2], 3), ([4, 6], 2)] {
            let c = shape[1]
            let x = randn(shape, seed: UInt64(10 + groups)), w = randn([c], seed: 2), b = randn([c], seed: 3)
            try gradCheck([x, w, b]) { try groupNorm($0[0], groups: groups, weight: $0[1], bias: $0[2]) }
            try gradCheck([x]) { try groupNorm($0[0], groups: groups, weight: nil, bias: nil) }
        }
    }

    func testGroupNormGradientsWhenSplitAcrossThreads() throws {
        // 8 * 16 * 1024 = 131072 floats: large enough for the batch to be split over two threads.
        let x = randn([8, 16, 32, 32], seed: 5), w = randn([16], seed: 6), b = randn([16], seed: 7)
        let y = try groupNorm(x, groups: 4, weight: w, bias: b)
        // Compare with the same samples normalised one at a time (single-threaded).
        let rows = try (0..<8).map { try groupNorm(x.narrow(dim: 0, start: $0, length: 1), groups: 4, weight: w, bias: b) }
        assertClose(y, try Tensor.cat(rows, dim: 0), rtol: 1e-6, atol: 1e-6)
        let gy = randn(y.shape, seed: 8, requiresGrad: false)
        try y.backward(gradient: gy)
        let (gx, gw, gb) = (x.grad!, w.grad!, b.grad!)
        x.zeroGrad(); w.zeroGrad(); b.zeroGrad()
        for (i, r) in rows.enumerated() { try r.backward(gradient: gy.narrow(dim: 0, start: i, length: 1)) }
        assertClose(gx, x.grad!, rtol: 1e-5, atol: 1e-6)
        assertClose(gw, w.grad!, rtol: 1e-5, atol: 1e-4)
        assertClose(gb, b.grad!, rtol: 1e-5, atol: 1e-4)
    }

    func testGroupNormHandComputed() throws {
        // x (1, 2, 2) = channel 0 [1, 2], channel 1 [3, 4].
        let x = try Tensor([1, 2, 3, 4], shape: [1, 2, 2])
        // One group: mean 2.5, biased variance (1.5^2 + 0.5^2 + 0.5^2 + 1.5^2) / 4 = 1.25 (not 5/3, the
        // unbiased one), so y = (x - 2.5) / sqrt(1.25 + 1e-5), then * w[c] + b[c].
        let r = 1 / (1.25 + 1e-5).squareRoot()
        let w = try Tensor([2, -1], shape: [2]), b = try Tensor([0.5, 0], shape: [2])
        let y = try groupNorm(x, groups: 1, weight: w, bias: b)
        assertClose(y.array, [Float(-1.5 * r * 2 + 0.5), Float(-0.5 * r * 2 + 0.5), Float(0.5 * r * -1), Float(1.5 * r * -1)],
                    rtol: 1e-6, atol: 1e-6)
        // Two groups (one channel each): [1, 2] has mean 1.5 and biased variance 0.25, so the outputs are
        // -/+ 0.5 / sqrt(0.25 + 1e-5) = -/+ 0.99998; likewise [3, 4].
        let r2 = 0.5 / (0.25 + 1e-5).squareRoot()
        assertClose(try groupNorm(x, groups: 2, weight: nil, bias: nil).array, [Float(-r2), Float(r2), Float(-r2), Float(r2)],
                    rtol: 1e-6, atol: 1e-7)
        // A constant group has variance 0: eps keeps rstd finite (1/sqrt(1e-5)) and the output is the bias,
        // up to the rounding of y = x * (rstd w) + (b - mean rstd w) with rstd w ~ 632 (PyTorch's form too).
        let flat = try Tensor([7, 7, 7, 7], shape: [1, 2, 2])
        assertClose(try groupNorm(flat, groups: 1, weight: w, bias: b).array, [0.5, 0.5, 0, 0], rtol: 0, atol: 1e-3)
    }

    func testGroupNormShapeErrors() throws {
        let x = Tensor.zeros([2, 6, 3])
        XCTAssertThrowsError(try groupNorm(x, groups: 4, weight: nil, bias: nil)) { e in
            XCTAssertTrue("\(e)".contains("group_norm") && "\(e)".contains("[2, 6, 3]"), "\(e)")
        }
        XCTAssertThrowsError(try groupNorm(x, groups: 3, weight: Tensor.ones([4]), bias: nil)) { e in
            XCTAssertTrue("\(e)".contains("group_norm") && "\(e)".contains("[4]"), "\(e)")
        }
        XCTAssertThrowsError(try groupNorm(Tensor.zeros([6]), groups: 3, weight: nil, bias: nil)) { e in
            XCTAssertTrue("\(e)".contains("group_norm"), "\(e)")
        }
    }

    // MARK: batch norm

    func testBatchNormGradients() throws {
        for shape in [[6, 3], [3, 4, 5], [2, 3, 3, 4]] {
            let c = shape[1]
            for training in [true, false] {
                let x = randn(shape, seed: 20), w = randn([c], seed: 21), b = randn([c], seed: 22)
                let rm = randn([c], seed: 23, requiresGrad: false)
                let rv = try Tensor(randn([c], seed: 24, requiresGrad: false).array.map { abs($0) + 0.5 }, shape: [c])
                try gradCheck([x, w, b]) {
                    try batchNorm($0[0], weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: training)
                }
                try gradCheck([x]) {
                    try batchNorm($0[0], weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: training)
                }
            }
        }
    }

    func testBatchNormHandComputedTrainingAndEval() throws {
        // x (N=2, C=2): channel 0 holds [1, 3], channel 1 holds [10, 14].
        let x = try Tensor([1, 10, 3, 14], shape: [2, 2])
        let w = try Tensor([2, 1], shape: [2]), b = try Tensor([0, -1], shape: [2])
        let rm = Tensor.zeros([2]), rv = Tensor.ones([2])
        let y = try batchNorm(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: true)
        // Batch means 2 and 12; biased variances 1 and 4 normalise: channel 0 -> (-1, 1) / sqrt(1 + 1e-5) * 2,
        // channel 1 -> (-2, 2) / sqrt(4 + 1e-5) - 1.
        let r0 = 1 / (1 + 1e-5).squareRoot(), r1 = 1 / (4 + 1e-5).squareRoot()
        assertClose(y.array, [Float(-2 * r0), Float(-2 * r1 - 1), Float(2 * r0), Float(2 * r1 - 1)], rtol: 1e-6, atol: 1e-6)
        // Running stats, momentum 0.1: mean 0.9 * 0 + 0.1 * (2, 12) = (0.2, 1.2); variance uses the UNBIASED
        // batch variances (2, 8) (n / (n - 1) = 2): 0.9 * 1 + 0.1 * (2, 8) = (1.1, 1.7).
        assertClose(rm.array, [0.2, 1.2], rtol: 1e-6, atol: 1e-7)
        assertClose(rv.array, [1.1, 1.7], rtol: 1e-6, atol: 1e-7)
        // Eval: normalise with those running stats and leave them untouched.
        let e = try batchNorm(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: false)
        let s0 = 1 / (1.1 + 1e-5).squareRoot(), s1 = 1 / (1.7 + 1e-5).squareRoot()
        assertClose(e.array, [Float((1 - 0.2) * s0 * 2), Float((10 - 1.2) * s1 - 1), Float((3 - 0.2) * s0 * 2), Float((14 - 1.2) * s1 - 1)],
                    rtol: 1e-6, atol: 1e-6)
        assertClose(rm.array, [0.2, 1.2], rtol: 1e-6, atol: 1e-7)
        assertClose(rv.array, [1.1, 1.7], rtol: 1e-6, atol: 1e-7)
    }

    func testBatchNorm2dStatisticsOverBatchAndSpace() throws {
        // (N=2, C=1, H=1, W=2): the one channel holds 1, 2 (sample 0) and 3, 6 (sample 1): mean 3, biased
        // variance (4 + 1 + 0 + 9) / 4 = 3.5, unbiased 14 / 3. running_var 1 -> 0.9 + 0.1 * 14/3 = 1.3666667.
        let x = try Tensor([1, 2, 3, 6], shape: [2, 1, 1, 2], requiresGrad: true)
        let rm = Tensor.zeros([1]), rv = Tensor.ones([1])
        let y = try batchNorm(x, weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true)
        let r = 1 / (3.5 + 1e-5).squareRoot()
        assertClose(y.array, [Float(-2 * r), Float(-r), 0, Float(3 * r)], rtol: 1e-6, atol: 1e-6)
        assertClose(rm.array, [0.3], rtol: 1e-6, atol: 0)
        assertClose(rv.array, [Float(0.9 + 0.1 * 14.0 / 3.0)], rtol: 1e-6, atol: 0)
        XCTAssertFalse(rm.requiresGrad || rv.requiresGrad)
        // The normalised output sums to zero whatever x is, so d(sum y)/dx = 0 in training mode.
        try y.sum().backward()
        assertClose(x.grad!.array, [0, 0, 0, 0], rtol: 0, atol: 1e-6)
    }

    func testBatchNormShapeErrors() throws {
        let x = Tensor.zeros([4, 3, 2, 2])
        let rm = Tensor.zeros([3]), rv = Tensor.ones([3])
        XCTAssertThrowsError(try batchNorm(x, weight: Tensor.ones([2]), bias: nil, runningMean: rm, runningVar: rv, training: true)) { e in
            XCTAssertTrue("\(e)".contains("batch_norm") && "\(e)".contains("[2]") && "\(e)".contains("[4, 3, 2, 2]"), "\(e)")
        }
        XCTAssertThrowsError(try batchNorm(x, weight: nil, bias: nil, runningMean: Tensor.zeros([4]), runningVar: rv, training: false)) { e in
            XCTAssertTrue("\(e)".contains("batch_norm") && "\(e)".contains("running_mean"), "\(e)")
        }
        XCTAssertThrowsError(try batchNorm(x, weight: nil, bias: nil, runningMean: rm, runningVar: Tensor.ones([3, 1]), training: false)) { e in
            XCTAssertTrue("\(e)".contains("batch_norm") && "\(e)".contains("running_var"), "\(e)")
        }
        // One value per channel cannot be normalised in training (PyTorch refuses it too); eval is fine.
        let single = Tensor.zeros([1, 3])
        XCTAssertThrowsError(try batchNorm(single, weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true)) { e in
            XCTAssertTrue("\(e)".contains("batch_norm"), "\(e)")
        }
        XCTAssertNoThrow(try batchNorm(single, weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: false))
        assertClose(rm.array, [0, 0, 0], rtol: 0, atol: 0)
    }
}
