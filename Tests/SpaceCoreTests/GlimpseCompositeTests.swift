import Foundation
import XCTest
@testable import SpaceCore

/// The composite as the reference computes it, from existing ops: every cell pasted onto a full canvas
/// (affine_grid + grid_sample with theta = [[ax, 0, bx], [0, ay, by]]), reshaped to (B, G2, C, H, W),
/// softmax of the importances over the cells, weighted sum over the cells; plain sum for `summed`.
private func slowComposite(_ values: Tensor, _ importance: Tensor, _ summed: Tensor?, _ affine: Tensor,
                           cellsPerImage g2: Int, canvas: (Int, Int)) throws -> (Tensor, Tensor?) {
    let n = values.shape[0], b = n / g2, (h, w) = canvas
    let a = try affine.split(sizes: [1, 1, 1, 1], dim: 1)
    let zero = Tensor.zeros([n, 1])
    let theta = try Tensor.stack([Tensor.cat([a[0], zero, a[1]], dim: 1), Tensor.cat([zero, a[2], a[3]], dim: 1)], dim: 1)
    func paste(_ t: Tensor) throws -> Tensor {
        let c = t.shape[1]
        let grid = try affineGrid(theta: theta, size: [n, c, h, w])
        return try gridSample(t, grid: grid).reshape([b, g2, c, h, w])
    }
    let weights = try paste(importance).softmax(dim: 1)
    let weighted = try (paste(values) * weights).sum(dim: 1)
    return (weighted, try summed.map { try paste($0).sum(dim: 1) })
}

/// (ax, bx, ay, by) per cell, cycling through the cases the op must handle: typical SPACE boxes, boxes
/// larger than the canvas, tiny boxes (|ax| ~ 100), mirrored (negative) scales, boxes partly off the
/// canvas and boxes entirely off it. With `allLarge`, every box covers the whole canvas (so every pixel
/// is reached by every cell, and no cell contributes the constant importance 0).
private func mixedAffine(cells: Int, seed: UInt64, allLarge: Bool = false) throws -> Tensor {
    let rng = SeededNoise(seed: seed)
    var a: [Float] = []
    for n in 0..<cells {
        for axis in 0..<2 {
            let u = rng.nextUniform(), t = -0.9 + 1.8 * rng.nextUniform()
            let (s, shift): (Float, Float)
            switch allLarge ? 1 : n % 6 {
            case 0: (s, shift) = (0.1 + 0.3 * u, t)
            case 1: (s, shift) = (1.2 + 2.0 * u, allLarge ? 0.2 * t : t)
            case 2: (s, shift) = (0.005 + 0.01 * u, t)
            case 3: (s, shift) = (-(0.2 + 0.5 * u), t)
            case 4: (s, shift) = (0.3 + 0.3 * u, rng.nextUniform() < 0.5 ? -1.1 : 1.1)
            default: (s, shift) = (0.2 + 0.2 * u, axis == 0 ? 2.5 : t)
            }
            a += [1 / s, -shift / s]
        }
    }
    return try Tensor(a, shape: [cells, 4], requiresGrad: true)
}

/// Affine parameters whose sample positions on every canvas row and column stay at least `margin`
/// pixels from every integer (bilinear sampling's kinks, the glimpse border included), drawn until so.
private func kinkFreeAffine(cells: Int, glimpse: (Int, Int), canvas: (Int, Int), seed: UInt64, margin: Double) throws -> Tensor {
    let rng = SeededNoise(seed: seed)
    var a: [Float] = []
    for _ in 0..<cells {
        for (count, size) in [(canvas.1, glimpse.1), (canvas.0, glimpse.0)] {
            while true {
                let s = 0.4 + 0.9 * rng.nextUniform(), t = -0.6 + 1.2 * rng.nextUniform()
                let (ax, bx) = (1 / s, -t / s)
                let ok = (0..<count).allSatisfy { k in
                    let x = Double(2 * k + 1) / Double(count) - 1
                    let ip = ((Double(ax) * x + Double(bx) + 1) * Double(size) - 1) / 2
                    let frac = ip - ip.rounded(.down)
                    return frac > margin && frac < 1 - margin
                }
                if ok { a += [ax, bx]; break }
            }
        }
    }
    return try Tensor(a, shape: [cells, 4], requiresGrad: true)
}

private func maxAbs(_ t: Tensor) -> Float { t.array.reduce(0) { Swift.max($0, Swift.abs($1)) } }

private struct CompositeCase {
    var b = 2, g2 = 16, cv = 4, cs = 1, gs = 8, canvas = (32, 32), allLarge = false, seed: UInt64 = 1

    func inputs() throws -> (values: Tensor, importance: Tensor, summed: Tensor?, affine: Tensor) {
        let n = b * g2
        let rng = SeededNoise(seed: seed)
        let values = randn([n, cv, gs, gs], seed: seed + 1)
        // Importances up to 100: exp would overflow float without the max subtracted.
        let imp = rng.uniform([n, 1, gs, gs], in: -5...100)
        let importance = Tensor(shape: imp.shape, storage: imp.storage, requiresGrad: true)
        let summed = cs > 0 ? randn([n, cs, gs, gs], seed: seed + 2) : nil
        return (values, importance, summed, try mixedAffine(cells: n, seed: seed + 3, allLarge: allLarge))
    }
}

final class GlimpseCompositeTests: XCTestCase {
    private let cases: [CompositeCase] = [
        CompositeCase(),
        CompositeCase(gs: 32, canvas: (64, 64), seed: 11),
        CompositeCase(gs: 32, canvas: (32, 32), seed: 21),
        CompositeCase(gs: 8, canvas: (64, 64), seed: 31),
        CompositeCase(g2: 4, gs: 8, canvas: (24, 40), allLarge: true, seed: 41),
        CompositeCase(b: 3, g2: 5, cv: 3, cs: 0, gs: 6, canvas: (17, 13), seed: 51),
    ]

    func testValuesMatchSlowPath() throws {
        for c in cases {
            let (v, i, s, a) = try c.inputs()
            let fast = try compositeGlimpses(weighted: v, importance: i, summed: s, affine: a, cellsPerImage: c.g2, canvas: c.canvas)
            let slow = try slowComposite(v, i, s, a, cellsPerImage: c.g2, canvas: c.canvas)
            XCTAssertEqual(fast.weighted.shape, [c.b, c.cv, c.canvas.0, c.canvas.1])
            assertClose(fast.weighted, slow.0, rtol: 1e-5, atol: 1e-5, "weighted, seed \(c.seed)")
            if let fs = fast.summed, let ss = slow.1 {
                XCTAssertEqual(fs.shape, [c.b, c.cs, c.canvas.0, c.canvas.1])
                assertClose(fs, ss, rtol: 1e-5, atol: 1e-5, "summed, seed \(c.seed)")
            } else {
                XCTAssertTrue(fast.summed == nil && slow.1 == nil)
            }
            XCTAssertGreaterThan(maxAbs(fast.weighted), 0.1, "the case must paste something (seed \(c.seed))")
        }
    }

    func testGradientsMatchSlowPath() throws {
        for c in cases {
            let (v, i, s, a) = try c.inputs()
            let inputs = [v, i, a] + (s.map { [$0] } ?? [])
            let rng = SeededNoise(seed: c.seed + 100)
            let ww = rng.normal([c.b, c.cv, c.canvas.0, c.canvas.1]), ws = rng.normal([c.b, c.cs, c.canvas.0, c.canvas.1])
            func grads(_ f: () throws -> (Tensor, Tensor?)) throws -> [Tensor] {
                for t in inputs { t.zeroGrad() }
                let (wt, st) = try f()
                var loss = try (wt * ww).sum()
                if let st { loss = try loss + (st * ws).sum() }
                try loss.backward()
                return try inputs.map { t in
                    guard let g = t.grad else { throw SpaceError.message("no gradient for \(shapeString(t.shape))") }
                    return g
                }
            }
            let fast = try grads {
                let r = try compositeGlimpses(weighted: v, importance: i, summed: s, affine: a, cellsPerImage: c.g2, canvas: c.canvas)
                return (r.weighted, r.summed)
            }
            let slow = try grads { try slowComposite(v, i, s, a, cellsPerImage: c.g2, canvas: c.canvas) }
            for (k, name) in ["values", "importance", "affine", "summed"].prefix(inputs.count).enumerated() {
                XCTAssertGreaterThan(maxAbs(slow[k]), 0, "\(name) gradient is zero (seed \(c.seed))")
                assertClose(fast[k], slow[k], rtol: 1e-4, atol: 1e-5 * maxAbs(slow[k]), "\(name) gradient, seed \(c.seed)")
            }
        }
    }

    func testGradCheck() throws {
        // Tiny case away from bilinear kinks, importances moderate so the softmax weights all matter.
        let (g2, b, gs, canvas) = (3, 2, 4, (5, 7))
        let n = g2 * b
        let v = randn([n, 2, gs, gs], seed: 61), s = randn([n, 1, gs, gs], seed: 62)
        let i = randn([n, 1, gs, gs], seed: 63, scale: 2)
        let a = try kinkFreeAffine(cells: n, glimpse: (gs, gs), canvas: canvas, seed: 64, margin: 0.1)
        try gradCheck([v, i, s, a]) { x in
            let r = try compositeGlimpses(weighted: x[0], importance: x[1], summed: x[2], affine: x[3], cellsPerImage: g2, canvas: canvas)
            return try Tensor.cat([r.weighted.flatten(), r.summed!.flatten()], dim: 0)
        }
    }

    func testSingleCellIdentityReproducesTheGlimpse() throws {
        // One cell per image, identity transform, glimpse the size of the canvas: every pixel centre
        // samples its own glimpse pixel and the softmax over one cell is 1.
        let v = randn([2, 3, 6, 5], seed: 71), i = randn([2, 1, 6, 5], seed: 72, scale: 50), s = randn([2, 1, 6, 5], seed: 73)
        let a = try Tensor([1, 0, 1, 0, 1, 0, 1, 0], shape: [2, 4])
        let r = try compositeGlimpses(weighted: v, importance: i, summed: s, affine: a, cellsPerImage: 1, canvas: (6, 5))
        assertClose(r.weighted, v, rtol: 0, atol: 1e-6)
        assertClose(r.summed!, s, rtol: 0, atol: 1e-6)
    }

    func testInverseAffineMatchesReferenceFormula() throws {
        let z = try Tensor([0.2, 0.5, 0.3, -0.4, 1, 0.25, -1, 0], shape: [2, 4], requiresGrad: true)
        let a = try glimpseInverseAffine(zWhere: z)
        let expected: [Float] = [1 / 0.2, -0.3 / 0.2, 1 / 0.5, 0.4 / 0.5, 1, 1, 4, 0]
        assertClose(a.array, expected, rtol: 1e-6, atol: 1e-6)
        try gradCheck([z], eps: 1e-3) { try glimpseInverseAffine(zWhere: $0[0]) }
    }

    func testShapeErrorsNameTheOpAndShapes() throws {
        let v = Tensor.zeros([8, 4, 8, 8]), i = Tensor.zeros([8, 1, 8, 8]), s = Tensor.zeros([8, 1, 8, 8]), a = Tensor.zeros([8, 4])
        func expectShapeError(_ what: String, naming shape: String = "[8, 4, 8, 8]", _ body: () throws -> Void) {
            XCTAssertThrowsError(try body(), what) { e in
                guard case SpaceError.shape(let op, let message) = e else { return XCTFail("\(what): \(e)") }
                XCTAssertEqual(op, "composite_glimpses", what)
                XCTAssertTrue(message.contains(shape), "\(what): \(message)")
            }
        }
        expectShapeError("importance channels") {
            _ = try compositeGlimpses(weighted: v, importance: Tensor.zeros([8, 2, 8, 8]), summed: s, affine: a, cellsPerImage: 4, canvas: (16, 16))
        }
        expectShapeError("summed size") {
            _ = try compositeGlimpses(weighted: v, importance: i, summed: Tensor.zeros([8, 1, 7, 8]), affine: a, cellsPerImage: 4, canvas: (16, 16))
        }
        expectShapeError("affine") {
            _ = try compositeGlimpses(weighted: v, importance: i, summed: s, affine: Tensor.zeros([8, 6]), cellsPerImage: 4, canvas: (16, 16))
        }
        expectShapeError("cells per image") {
            _ = try compositeGlimpses(weighted: v, importance: i, summed: s, affine: a, cellsPerImage: 3, canvas: (16, 16))
        }
        expectShapeError("rank", naming: "[8, 4, 64]") {
            _ = try compositeGlimpses(weighted: Tensor.zeros([8, 4, 64]), importance: i, summed: s, affine: a, cellsPerImage: 4, canvas: (16, 16))
        }
        XCTAssertThrowsError(try compositeGlimpses(weighted: v, importance: i, summed: s, affine: a, cellsPerImage: 4, canvas: (0, 16)))
    }

}
