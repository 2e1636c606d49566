import Foundation
import XCTest
@testable import SpaceCore

/// A grid of `shape` (N, H, W, 2) whose source positions ix = ((x + 1) * width - 1) / 2 (iy likewise)
/// lie in [-3, size + 2): inside, in the border band where some taps fall outside, and entirely outside,
/// with fractional parts in [margin, 1 - margin], away from the pixel-centre kinks of bilinear sampling.
/// With `interior`, all four taps of every point lie inside (ix in [0, size - 1)).
private func kinkFreeGrid(_ shape: [Int], width: Int, height: Int, seed: UInt64, margin: Float = 0.1,
                          interior: Bool = false, requiresGrad: Bool = true) throws -> Tensor {
    let rng = SeededNoise(seed: seed)
    var values: [Float] = []
    for _ in 0..<(shape.reduce(1, *) / 2) {
        for size in [width, height] {
            let whole = interior ? Float(Int(rng.nextUniform() * Float(size - 1)))
                                 : Float(Int(rng.nextUniform() * Float(size + 5)) - 3)
            let pix = whole + margin + (1 - 2 * margin) * rng.nextUniform()
            values.append((2 * pix + 1) / Float(size) - 1)
        }
    }
    return try Tensor(values, shape: shape, requiresGrad: requiresGrad)
}

/// theta for the identity transform, repeated n times: (n, 2, 3).
private func identityTheta(_ n: Int) throws -> Tensor {
    try Tensor(Array(repeating: [1, 0, 0, 0, 1, 0] as [Float], count: n).flatMap { $0 }, shape: [n, 2, 3])
}

final class SpatialTransformTests: XCTestCase {
    // MARK: affine grid

    func testAffineGridIdentityGivesPixelCentres() throws {
        // align_corners=False: the identity grid holds pixel centres, x_j = (2j + 1)/W - 1 and
        // y_i = (2i + 1)/H - 1; for W = 4: -0.75, -0.25, 0.25, 0.75; for H = 3: -2/3, 0, 2/3.
        let g = try affineGrid(theta: identityTheta(2), size: [2, 5, 3, 4])
        XCTAssertEqual(g.shape, [2, 3, 4, 2])
        var expected: [Float] = []
        for _ in 0..<2 { for i in 0..<3 { for j in 0..<4 { expected += [Float(2 * j + 1) / 4 - 1, Float(2 * i + 1) / 3 - 1] } } }
        assertClose(g.array, expected, rtol: 0, atol: 2e-7)
        assertClose(Array(g.array.prefix(8)), [-0.75, -2.0 / 3, -0.25, -2.0 / 3, 0.25, -2.0 / 3, 0.75, -2.0 / 3], rtol: 0, atol: 2e-7)
    }

    func testAffineGridHandComputed() throws {
        // theta = [[0.5, 0.1, 0.2], [-0.3, 2, -1]]: grid = (0.5 x + 0.1 y + 0.2, -0.3 x + 2 y - 1) at the
        // pixel centres of a 2 x 2 output, x, y in {-0.5, 0.5}.
        let theta = try Tensor([0.5, 0.1, 0.2, -0.3, 2, -1], shape: [1, 2, 3])
        let g = try affineGrid(theta: theta, size: [1, 1, 2, 2])
        var expected: [Float] = []
        for y in [-0.5, 0.5] as [Float] { for x in [-0.5, 0.5] as [Float] { expected += [0.5 * x + 0.1 * y + 0.2, -0.3 * x + 2 * y - 1] } }
        assertClose(g.array, expected, rtol: 1e-6, atol: 1e-7)
    }

    func testAffineGridGradient() throws {
        let theta = randn([3, 2, 3], seed: 30)
        try gradCheck([theta]) { try affineGrid(theta: $0[0], size: [3, 2, 5, 7]) }
    }

    func testAffineGridSplitAcrossThreadsMatchesPerEntry() throws {
        // 64 grids of 32 x 32 (131072 floats): split over threads; each entry must equal its own grid.
        let theta = randn([64, 2, 3], seed: 46)
        let g = try affineGrid(theta: theta, size: [64, 3, 32, 32])
        let gy = randn(g.shape, seed: 47, requiresGrad: false)
        try g.backward(gradient: gy)
        let whole = theta.grad!
        theta.zeroGrad()
        let rows = try (0..<64).map { try affineGrid(theta: theta.narrow(dim: 0, start: $0, length: 1), size: [1, 3, 32, 32]) }
        assertClose(g, try Tensor.cat(rows, dim: 0), rtol: 0, atol: 0)
        try Tensor.cat(rows, dim: 0).backward(gradient: gy)
        assertClose(whole, theta.grad!, rtol: 0, atol: 0)
    }

    func testAffineGridErrors() throws {
        XCTAssertThrowsError(try affineGrid(theta: Tensor.zeros([2, 3, 3]), size: [2, 1, 4, 4])) { e in
            XCTAssertTrue("\(e)".contains("affine_grid") && "\(e)".contains("[2, 3, 3]"), "\(e)")
        }
        XCTAssertThrowsError(try affineGrid(theta: Tensor.zeros([2, 2, 3]), size: [3, 1, 4, 4])) { e in
            XCTAssertTrue("\(e)".contains("affine_grid") && "\(e)".contains("[3, 1, 4, 4]"), "\(e)")
        }
        XCTAssertThrowsError(try affineGrid(theta: Tensor.zeros([2, 2, 3]), size: [2, 1, 0, 4]))
    }

    // MARK: grid sample

    func testGridSampleIdentityReproducesInput() throws {
        // Pixel-centre coordinates unnormalise to ix = ((2j+1)/W - 1 + 1) * W - 1) / 2 = j exactly; with
        // power-of-two sizes every step is exact in float, so the only tap with weight is the pixel itself.
        let input = randn([2, 3, 4, 8], seed: 31, requiresGrad: false)
        var exact: [Float] = []
        for _ in 0..<2 { for i in 0..<4 { for j in 0..<8 { exact += [Float(2 * j + 1) / 8 - 1, Float(2 * i + 1) / 4 - 1] } } }
        let out = try gridSample(input, grid: Tensor(exact, shape: [2, 4, 8, 2]))
        XCTAssertEqual(out.shape, input.shape)
        XCTAssertEqual(out.array, input.array)
        // Through affine_grid (linspace rounding, odd sizes) the reproduction holds to float rounding.
        let odd = randn([2, 2, 5, 7], seed: 32, requiresGrad: false)
        let viaAffine = try gridSample(odd, grid: affineGrid(theta: identityTheta(2), size: [2, 2, 5, 7]))
        assertClose(viaAffine, odd, rtol: 1e-5, atol: 1e-6)
    }

    func testGridSampleZerosPaddingAtBorders() throws {
        // input (1, 1, 2, 2) = [[a, b], [c, d]] with a = 1, b = 2, c = 3, d = 4. W = H = 2, so
        // ix = ((x + 1) * 2 - 1) / 2 = x + 0.5 and likewise iy.
        let input = try Tensor([1, 2, 3, 4], shape: [1, 1, 2, 2], requiresGrad: true)
        // Points (x, y):
        //  (-1, -0.5): ix = -0.5, iy = 0 -> halfway between the padding column -1 and pixel a: 0.5 * a = 0.5
        //  (-1, -1):   ix = iy = -0.5   -> the corner: weight 0.25 on a, the rest padding: 0.25
        //  (1, -0.5):  ix = 1.5, iy = 0 -> halfway between b and the padding column 2: 0.5 * b = 1
        //  (-2, 0):    ix = -1.5        -> every tap outside: 0
        //  (0, 0):     ix = iy = 0.5    -> the centre: (a + b + c + d) / 4 = 2.5
        let grid = try Tensor([-1, -0.5, -1, -1, 1, -0.5, -2, 0, 0, 0], shape: [1, 1, 5, 2], requiresGrad: true)
        let out = try gridSample(input, grid: grid)
        XCTAssertEqual(out.shape, [1, 1, 1, 5])
        assertClose(out.array, [0.5, 0.25, 1, 0, 2.5], rtol: 0, atol: 1e-7)
        try out.sum().backward()
        // d out / d input: the bilinear weights summed over points: a gets 0.5 + 0.25 + 0.25, b 0.5 + 0.25,
        // c 0.25, d 0.25.
        assertClose(input.grad!.array, [1, 0.75, 0.25, 0.25], rtol: 0, atol: 1e-7)
        // d out / d grid (PyTorch's formula, d ix / d x = W / 2 = 1):
        //  (-1, -0.5): out = a * (ix + 1) * (row weight 1 at iy = 0): d/dx = a = 1. iy = 0 is a pixel centre;
        //              PyTorch takes floor(iy) = 0, taps rows 0 and 1 with weights 1 - iy and iy:
        //              d/dy = (ix + 1) * (c - a) = 0.5 * 2 = 1.
        //  (-1, -1):   out = a * (ix + 1) * (iy + 1): d/dx = a * 0.5 = 0.5, d/dy = 0.5.
        //  (1, -0.5):  out = b * (2 - ix) at iy = 0: d/dx = -b = -2; d/dy = (2 - ix) * (d - b) = 0.5 * 2 = 1.
        //  (-2, 0):    entirely outside: 0, 0.
        //  (0, 0):     d/dx = ((b - a) + (d - c)) / 2 = 1, d/dy = ((c - a) + (d - b)) / 2 = 2.
        assertClose(grid.grad!.array, [1, 1, 0.5, 0.5, -2, 1, 0, 0, 1, 2], rtol: 0, atol: 1e-6)
    }

    func testGridSampleGradients() throws {
        // Points inside, in the border band and entirely outside; both gradients against finite differences.
        // eps 1e-2 moves ix by at most 1e-2 * 6 / 2 = 0.03 px, inside the 0.1 px margin from the kinks.
        let input = randn([2, 3, 5, 6], seed: 33)
        let grid = try kinkFreeGrid([2, 4, 3, 2], width: 6, height: 5, seed: 34)
        try gradCheck([input, grid], maxChecks: 80) { try gridSample($0[0], grid: $0[1]) }
        XCTAssertTrue(grid.grad!.array.contains(0), "some points should lie entirely outside")
        XCTAssertGreaterThan(grid.grad!.array.filter { $0 != 0 }.count, grid.count / 3)
        // A different image and output size, with one channel.
        let single = randn([1, 1, 7, 4], seed: 35)
        let g2 = try kinkFreeGrid([1, 6, 5, 2], width: 4, height: 7, seed: 36)
        try gradCheck([single, g2]) { try gridSample($0[0], grid: $0[1]) }
        // Every point inside, rows of 8: the kernel's 8-point gather blocks.
        let image = randn([2, 2, 6, 7], seed: 44)
        let g3 = try kinkFreeGrid([2, 3, 8, 2], width: 7, height: 6, seed: 45, interior: true)
        try gradCheck([image, g3], maxChecks: 96) { try gridSample($0[0], grid: $0[1]) }
        XCTAssertFalse(g3.grad!.array.contains(0))
    }

    func testGridSampleImageIndexMatchesMaterialisedImages() throws {
        // 64 grids of 32 x 32 on 2 channels: large enough to be split over threads. Sorted index (glimpses
        // of consecutive images), unsorted and an identity-free repeat, each against copying the images.
        let input = randn([3, 2, 16, 16], seed: 37)
        let sorted = (0..<64).map { $0 * 3 / 64 }
        let unsorted = (0..<64).map { ($0 * 7) % 3 }
        for index in [sorted, unsorted] {
            let grid = randn([64, 32, 32, 2], seed: 38, scale: 0.8)
            let gy = randn([64, 2, 32, 32], seed: 39, requiresGrad: false)
            let y = try gridSample(input, grid: grid, imageIndex: index)
            try y.backward(gradient: gy)
            let (gi, gg) = (input.grad!, grid.grad!)
            input.zeroGrad(); grid.zeroGrad()
            let y2 = try gridSample(input.indexSelect(dim: 0, index), grid: grid)
            assertClose(y, y2, rtol: 0, atol: 0)
            try y2.backward(gradient: gy)
            assertClose(gi, input.grad!, rtol: 1e-5, atol: 1e-5)
            assertClose(gg, grid.grad!, rtol: 0, atol: 0)
            input.zeroGrad(); grid.zeroGrad()
        }
    }

    func testGridSampleGradientsOnlyWhereRequired() throws {
        let input = randn([2, 1, 4, 4], seed: 40, requiresGrad: false)
        let grid = randn([2, 3, 3, 2], seed: 41, scale: 0.5)
        try gridSample(input, grid: grid).sum().backward()
        XCTAssertNil(input.grad)
        XCTAssertNotNil(grid.grad)
        let x = randn([2, 1, 4, 4], seed: 42), fixed = randn([2, 3, 3, 2], seed: 43, requiresGrad: false)
        try gridSample(x, grid: fixed).sum().backward()
        XCTAssertNotNil(x.grad)
        XCTAssertNil(fixed.grad)
    }

    func testGridSampleErrors() throws {
        let input = Tensor.zeros([2, 3, 4, 4])
        XCTAssertThrowsError(try gridSample(input, grid: Tensor.zeros([3, 2, 2, 2]))) { e in
            XCTAssertTrue("\(e)".contains("grid_sample") && "\(e)".contains("[3, 2, 2, 2]"), "\(e)")
        }
        XCTAssertThrowsError(try gridSample(input, grid: Tensor.zeros([2, 2, 2, 3]))) { e in
            XCTAssertTrue("\(e)".contains("grid_sample") && "\(e)".contains("[2, 2, 2, 3]"), "\(e)")
        }
        XCTAssertThrowsError(try gridSample(input, grid: Tensor.zeros([3, 2, 2, 2]), imageIndex: [0, 2, 1])) { e in
            XCTAssertTrue("\(e)".contains("grid_sample") && "\(e)".contains("2"), "\(e)")
        }
        XCTAssertThrowsError(try gridSample(input, grid: Tensor.zeros([3, 2, 2, 2]), imageIndex: [0, 1])) { e in
            XCTAssertTrue("\(e)".contains("grid_sample"), "\(e)")
        }
        XCTAssertNoThrow(try gridSample(input, grid: Tensor.zeros([3, 2, 2, 2]), imageIndex: [0, 1, 1]))
    }
}
