import XCTest
import CKernels
@testable import SpaceCore

final class ConvolutionTests: XCTestCase {
    // MARK: gradients against finite differences

    func testGradientsStride1Padding1WithBias() throws {
        let x = randn([2, 3, 5, 6], seed: 1), w = randn([4, 3, 3, 3], seed: 2, scale: 0.5), b = randn([4], seed: 3)
        try gradCheck([x, w, b]) { t in try conv2d(t[0], weight: t[1], bias: t[2], stride: 1, padding: 1) }
    }

    func testGradientsStride2Padding1() throws {
        let x = randn([1, 2, 7, 7], seed: 4), w = randn([3, 2, 3, 3], seed: 5, scale: 0.5), b = randn([3], seed: 6)
        try gradCheck([x, w, b]) { t in try conv2d(t[0], weight: t[1], bias: t[2], stride: 2, padding: 1) }
    }

    func testGradientsNonSquareKernelPadding2NoBias() throws {
        let x = randn([2, 2, 5, 4], seed: 7), w = randn([3, 2, 2, 3], seed: 8, scale: 0.5)
        try gradCheck([x, w]) { t in try conv2d(t[0], weight: t[1], bias: nil, stride: 1, padding: 2) }
        try gradCheck([x, w]) { t in try conv2d(t[0], weight: t[1], bias: nil, stride: (2, 1), padding: (2, 1)) }
    }

    func testGradientsOneByOne() throws {
        let x = randn([3, 4, 3, 3], seed: 9), w = randn([2, 4, 1, 1], seed: 10), b = randn([2], seed: 11)
        try gradCheck([x, w, b]) { t in try conv2d(t[0], weight: t[1], bias: t[2]) }
        // A 1x1 map (the glimpse encoder's last layers).
        let x1 = randn([5, 4, 1, 1], seed: 12)
        try gradCheck([x1, w, b]) { t in try conv2d(t[0], weight: t[1], bias: t[2]) }
    }

    func testGradientsStride2Kernel4() throws {
        let x = randn([2, 3, 8, 8], seed: 13), w = randn([4, 3, 4, 4], seed: 14, scale: 0.5), b = randn([4], seed: 15)
        try gradCheck([x, w, b]) { t in try conv2d(t[0], weight: t[1], bias: t[2], stride: 2, padding: 1) }
    }

    func testGradientsOnLargeMaps() throws {
        // >= 1024 output positions per image: the kernel's per-image sgemm path, with and without im2col.
        let x = randn([2, 2, 34, 32], seed: 16), w = randn([3, 2, 3, 3], seed: 17, scale: 0.5), b = randn([3], seed: 18)
        try gradCheck([x, w, b], maxChecks: 30) { t in try conv2d(t[0], weight: t[1], bias: t[2], stride: 1, padding: 1) }
        let w1 = randn([3, 2, 1, 1], seed: 19)
        try gradCheck([x, w1, b], maxChecks: 30) { t in try conv2d(t[0], weight: t[1], bias: t[2]) }
    }

    func testOnlyRequestedGradients() throws {
        let x = randn([2, 2, 4, 4], seed: 20, requiresGrad: false), w = randn([3, 2, 3, 3], seed: 21)
        let b = randn([3], seed: 22, requiresGrad: false)
        try conv2d(x, weight: w, bias: b, padding: 1).sum().backward()
        XCTAssertNil(x.grad)
        XCTAssertNil(b.grad)
        XCTAssertEqual(w.grad?.shape, [3, 2, 3, 3])
        let y = try Tensor.noGrad { try conv2d(x, weight: w, bias: b, padding: 1) }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertFalse(y.hasGradientGraph)
    }

    // MARK: pinned values

    func testHandComputedValuesAndGradients() throws {
        let x = try Tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], shape: [1, 1, 3, 3], requiresGrad: true)
        let w = try Tensor([1, 2, 3, 4], shape: [1, 1, 2, 2], requiresGrad: true)
        let b = try Tensor([0.5], shape: [1], requiresGrad: true)
        let y = try conv2d(x, weight: w, bias: b)
        XCTAssertEqual(y.shape, [1, 1, 2, 2])
        // y[0,0] = 1*1 + 2*2 + 4*3 + 5*4 = 37, and so on, plus 0.5.
        XCTAssertEqual(y.array, [37.5, 47.5, 67.5, 77.5])
        try y.sum().backward()
        // dL/dw[i,j] = sum of the x entries tap (i,j) sees; dL/dx = sum of the taps covering each entry.
        XCTAssertEqual(w.grad?.array, [12, 16, 24, 28])
        XCTAssertEqual(x.grad?.array, [1, 3, 2, 4, 10, 6, 3, 7, 4])
        XCTAssertEqual(b.grad?.array, [4])

        // Padding 1, stride 2: windows start at (-1,-1), (-1,1), (1,-1), (1,1).
        let z = try conv2d(x.detached(), weight: w.detached(), bias: nil, stride: 2, padding: 1)
        XCTAssertEqual(z.shape, [1, 1, 2, 2])
        let expected: [Float] = [4, 18, 36, 77]  // 4*x00; 3*x01 + 4*x02; 2*x10 + 4*x20; the full window
        XCTAssertEqual(z.array, expected)
    }

    func testChannelsSumAndOutputsSeparate() throws {
        // Two input channels (x and ones), two outputs; 2x2 kernel on a 2x3 map, no padding.
        let x = try Tensor([1, 2, 3, 4, 5, 6, 1, 1, 1, 1, 1, 1], shape: [1, 2, 2, 3])
        let w = try Tensor([1, 0, 0, 1, /* ch1 */ 1, 1, 1, 1,     // output 0: x diagonal + 4
                            0, 0, 0, 0, /* ch1 */ 0.5, 0, 0, 0],  // output 1: 0.5
                           shape: [2, 2, 2, 2])
        let b = try Tensor([10, -1], shape: [2])
        let y = try conv2d(x, weight: w, bias: b)
        XCTAssertEqual(y.shape, [1, 2, 1, 2])
        let expected: [Float] = [20, 22, -0.5, -0.5]  // x00 + x11 + 4 + 10, x01 + x12 + 4 + 10, 0.5 - 1
        XCTAssertEqual(y.array, expected)
    }

    func testMatchesNaiveKernelOnSpaceShapes() throws {
        // Glimpse-encoder-like batch of tiny maps (gathered into one sgemm) and a larger map (per-image sgemm).
        for (xs, ws, s, p) in [([64, 16, 4, 4], [16, 16, 3, 3], 1, 1), ([2, 3, 40, 40], [8, 3, 4, 4], 2, 1),
                               ([3, 8, 33, 33], [8, 8, 3, 3], 1, 1), ([40, 16, 2, 2], [32, 16, 1, 1], 1, 0)] {
            let x = randn(xs, seed: 30, requiresGrad: false), w = randn(ws, seed: 31, requiresGrad: false)
            let b = randn([ws[0]], seed: 32, requiresGrad: false)
            let y = try conv2d(x, weight: w, bias: b, stride: s, padding: p)
            let ref = Storage(count: y.count)
            let st = sk_naive_conv2d_forward(ref.pointer, x.pointer, w.pointer, b.pointer,
                                             Int64(xs[0]), Int64(xs[1]), Int64(xs[2]), Int64(xs[3]), Int64(ws[0]),
                                             Int64(ws[2]), Int64(ws[3]), Int64(s), Int64(s), Int64(p), Int64(p))
            XCTAssertEqual(st, SK_OK)
            assertClose(y.array, ref.array, rtol: 1e-4, atol: 1e-4, "\(xs) \(ws)")
        }
    }

    // MARK: errors

    func testShapeErrors() throws {
        let x = Tensor.zeros([2, 3, 5, 5]), w = Tensor.zeros([4, 3, 3, 3])
        func expectError(_ message: String, _ parts: [String], _ body: () throws -> Tensor, line: UInt = #line) {
            XCTAssertThrowsError(try body(), message, line: line) { e in
                let text = "\(e)"
                XCTAssertTrue(text.contains("conv2d"), "\(message): \(text)", line: line)
                for part in parts { XCTAssertTrue(text.contains(part), "\(message): '\(part)' missing in \(text)", line: line) }
            }
        }
        expectError("channels", ["[2, 4, 5, 5]", "[4, 3, 3, 3]"]) { try conv2d(Tensor.zeros([2, 4, 5, 5]), weight: w, bias: nil) }
        expectError("input rank", ["[3, 5, 5]"]) { try conv2d(Tensor.zeros([3, 5, 5]), weight: w, bias: nil) }
        expectError("weight rank", ["[4, 27]"]) { try conv2d(x, weight: Tensor.zeros([4, 27]), bias: nil) }
        expectError("bias", ["[3]", "[4, 3, 3, 3]"]) { try conv2d(x, weight: w, bias: Tensor.zeros([3])) }
        expectError("too small", ["[2, 3, 2, 2]", "[4, 3, 3, 3]"]) { try conv2d(Tensor.zeros([2, 3, 2, 2]), weight: w, bias: nil) }
        expectError("empty kernel", ["[4, 3, 0, 3]"]) { try conv2d(x, weight: Tensor.zeros([4, 3, 0, 3]), bias: nil) }
        expectError("stride", ["stride"]) { try conv2d(x, weight: w, bias: nil, stride: 0) }
        expectError("padding", ["padding"]) { try conv2d(x, weight: w, bias: nil, padding: -1) }
        // Just large enough: padding makes a 2x2 input fit a 3x3 kernel.
        XCTAssertEqual(try conv2d(Tensor.zeros([2, 3, 2, 2]), weight: w, bias: nil, padding: 1).shape, [2, 4, 2, 2])
    }

    func testEmptyBatch() throws {
        let y = try conv2d(Tensor.zeros([0, 3, 5, 5]), weight: Tensor.zeros([4, 3, 3, 3]), bias: nil, stride: 2)
        XCTAssertEqual(y.shape, [0, 4, 2, 2])
    }
}
