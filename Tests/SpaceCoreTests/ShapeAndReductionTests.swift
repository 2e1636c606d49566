import XCTest
@testable import SpaceCore

final class ShapeAndReductionTests: XCTestCase {
    func testReductionGradients() throws {
        let x = randn([3, 4, 5], seed: 11)
        try gradCheck([x]) { try $0[0].sum(dim: 1) }
        try gradCheck([x]) { try $0[0].sum(dims: [0, 2], keepDim: true) }
        try gradCheck([x]) { try $0[0].mean(dims: [1, 2]) }
        try gradCheck([x]) { try $0[0].logsumexp(dim: 2) }
        try gradCheck([x]) { try $0[0].softmax(dim: 0) }
        try gradCheck([x]) { try $0[0].logSoftmax(dim: -1) }
    }

    func testLogsumexpIsStable() throws {
        let x = try Tensor([1000, 1000, -Float.infinity, -Float.infinity], shape: [2, 2])
        let y = try x.logsumexp(dim: 1)
        XCTAssertEqual(y.array[0], 1000 + Float(Foundation.log(2.0)), accuracy: 1e-3)
        XCTAssertEqual(y.array[1], -Float.infinity)
        let s = try Tensor([1, 2, 3], shape: [3]).softmax(dim: 0).array
        let e = [1.0, 2.0, 3.0].map { Foundation.exp($0) }, z = e.reduce(0, +)
        assertClose(s, e.map { Float($0 / z) }, rtol: 1e-6)
    }

    func testShapeOpGradients() throws {
        let x = randn([2, 3, 4], seed: 12)
        try gradCheck([x]) { try $0[0].permute(2, 0, 1) }
        try gradCheck([x]) { try $0[0].transpose(0, 2).reshape([4, 6]) }
        try gradCheck([x]) { try $0[0].narrow(dim: 2, start: 1, length: 2) }
        try gradCheck([x]) { try $0[0].select(dim: 1, index: -1) }
        try gradCheck([x]) { try $0[0].indexSelect(dim: 1, [2, 0, 2]) }
        try gradCheck([x]) { try $0[0].repeatInterleave(2, dim: 0) }
        try gradCheck([x]) { try $0[0].repeatTiled([2, 1, 3]) }
        let y = randn([2, 1, 4], seed: 13)
        try gradCheck([x, y]) { try Tensor.cat([$0[0], $0[1]], dim: 1) }
        try gradCheck([y]) { try $0[0].expand([3, 2, 5, 4]) }
        try gradCheck([x]) { try Tensor.stack(try $0[0].chunk(2, dim: 2), dim: 0) }
        let p = randn([1, 8, 2, 3], seed: 14)
        try gradCheck([p]) { try $0[0].pixelShuffle(2) }
    }

    func testRepeatInterleaveOrderMatchesPyTorch() throws {
        // torch.repeat_interleave(tensor([[1, 2], [3, 4]]), 2, dim=0) = [[1,2],[1,2],[3,4],[3,4]];
        // along dim 1: [[1,1,2,2],[3,3,4,4]]. Tensor.repeat tiles instead: [1,2] -> [1,2,1,2].
        let x = try Tensor([1, 2, 3, 4], shape: [2, 2])
        XCTAssertEqual(try x.repeatInterleave(2, dim: 0).array, [1, 2, 1, 2, 3, 4, 3, 4])
        XCTAssertEqual(try x.repeatInterleave(2, dim: 1).array, [1, 1, 2, 2, 3, 3, 4, 4])
        XCTAssertEqual(try x.repeatTiled([1, 2]).array, [1, 2, 1, 2, 3, 4, 3, 4])
        XCTAssertEqual(try x.repeatTiled([2, 1]).array, [1, 2, 3, 4, 1, 2, 3, 4])
    }

    func testPixelShuffleLayoutMatchesPyTorch() throws {
        // out[n, c, h*r + i, w*r + j] = in[n, c*r*r + i*r + j, h, w]
        let x = try Tensor((0..<8).map(Float.init), shape: [1, 4, 1, 2])
        XCTAssertEqual(try x.pixelShuffle(2).array, [0, 2, 1, 3, 4, 6, 5, 7])
    }

    func testChunkAndSplitSizes() throws {
        let x = Tensor.arange(7)
        XCTAssertEqual(try x.chunk(3, dim: 0).map { $0.shape }, [[3], [3], [1]])
        XCTAssertEqual(try x.split(size: 2, dim: 0).map { $0.count }, [2, 2, 2, 1])
        XCTAssertEqual(try Tensor.arange(6).chunk(4, dim: 0).map { $0.count }, [2, 2, 2])
    }

    func testLinspaceMatchesPyTorch() {
        XCTAssertEqual(Tensor.linspace(-1, 1, count: 5).array, [-1, -0.5, 0, 0.5, 1])
    }

    func testMatmulAndLinearGradients() throws {
        let a = randn([3, 4], seed: 15), b = randn([4, 5], seed: 16)
        try gradCheck([a, b]) { try $0[0].matmul($0[1]) }
        let ba = randn([2, 3, 4], seed: 17), bb = randn([2, 4, 2], seed: 18)
        try gradCheck([ba, bb]) { try $0[0].matmul($0[1]) }
        try gradCheck([ba, b]) { try $0[0].matmul($0[1]) }
        let x = randn([2, 3, 4], seed: 19), w = randn([5, 4], seed: 20), bias = randn([5], seed: 21)
        try gradCheck([x, w, bias]) { try linear($0[0], weight: $0[1], bias: $0[2]) }
        try gradCheck([x, w]) { try linear($0[0], weight: $0[1], bias: nil) }
    }

    func testBadShapesThrowNamingTheOp() {
        let a = Tensor.zeros([2, 3]), b = Tensor.zeros([4, 5])
        XCTAssertThrowsError(try a.matmul(b)) { XCTAssertTrue("\($0)".contains("matmul") && "\($0)".contains("[4, 5]")) }
        XCTAssertThrowsError(try a.reshape([4])) { XCTAssertTrue("\($0)".contains("reshape")) }
        XCTAssertThrowsError(try Tensor.cat([a, b], dim: 0)) { XCTAssertTrue("\($0)".contains("cat")) }
        XCTAssertThrowsError(try linear(a, weight: b, bias: nil)) { XCTAssertTrue("\($0)".contains("linear") && "\($0)".contains("[2, 3]")) }
        XCTAssertThrowsError(try a.indexSelect(dim: 1, [3])) { XCTAssertTrue("\($0)".contains("index_select")) }
        XCTAssertThrowsError(try a.permute([0, 0])) { XCTAssertTrue("\($0)".contains("permute")) }
        XCTAssertThrowsError(try a.sum(dim: 2)) { XCTAssertTrue("\($0)".contains("sum")) }
    }

    func testGradientAccumulationAndNoGrad() throws {
        let w = try Tensor([2], shape: [1], requiresGrad: true)
        try (w * 3).sum().backward()
        try (w * 4).sum().backward()
        XCTAssertEqual(w.grad?.array, [7])
        w.zeroGrad()
        XCTAssertNil(w.grad)
        let y = Tensor.noGrad { w * 5 }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertFalse(y.hasGradientGraph)
        XCTAssertThrowsError(try y.sum().backward())
    }

    func testFanOutAccumulates() throws {
        // d/dx (x*x + x) = 2x + 1 through a tensor used three times
        let x = try Tensor([3], shape: [1], requiresGrad: true)
        try (x * x + x).sum().backward()
        XCTAssertEqual(x.grad?.array, [7])
    }
}

import Foundation
