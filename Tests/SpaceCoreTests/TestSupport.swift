import XCTest
@testable import SpaceCore

/// Asserts |actual - expected| <= atol + rtol * |expected| elementwise, reporting at the caller's line.
func assertClose(_ actual: [Float], _ expected: [Float], rtol: Float = 1e-5, atol: Float = 1e-6,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("count \(actual.count) != \(expected.count) \(message)", file: file, line: line); return
    }
    var worst = 0, worstErr: Float = -1
    for i in 0..<actual.count {
        let err = abs(actual[i] - expected[i]) - (atol + rtol * abs(expected[i]))
        if err > worstErr || actual[i].isNaN != expected[i].isNaN { worstErr = actual[i].isNaN != expected[i].isNaN ? .infinity : err; worst = i }
    }
    if worstErr > 0 {
        XCTFail("element \(worst): \(actual[worst]) vs expected \(expected[worst]) (rtol \(rtol), atol \(atol)) \(message)", file: file, line: line)
    }
}

func assertClose(_ actual: Tensor, _ expected: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "shape \(message)", file: file, line: line)
    assertClose(actual.array, expected.array, rtol: rtol, atol: atol, message, file: file, line: line)
}

/// Checks the autograd gradients of `f` against central finite differences.
///
/// The scalar differentiated is L = sum(f(inputs) * W) with a fixed random W, evaluated in Double
/// for the finite differences. Float32 forward passes carry relative round-off ~1e-7 of the summed
/// magnitudes, which the central difference divides by 2*eps (eps = 1e-2 by default, so ~1e-5), and the
/// truncation error is O(eps^2 * f''') ~ 1e-4 relative on smooth ops: the default tolerance
/// atol + rtol * max|grad| with rtol = 5e-3 sits above both with margin, and far below any real bug.
/// At most `maxChecks` entries of each input are perturbed (chosen at random, fixed by the seed).
func gradCheck(_ inputs: [Tensor], eps: Float = 1e-2, rtol: Float = 5e-3, atol: Float = 1e-4, maxChecks: Int = 60,
               seed: UInt64 = 7, file: StaticString = #filePath, line: UInt = #line,
               _ f: ([Tensor]) throws -> Tensor) throws {
    for t in inputs { t.zeroGrad() }
    let out = try f(inputs)
    let rng = SeededNoise(seed: seed)
    let w = rng.normal(out.shape)
    try (out * w).sum().backward()
    func loss() throws -> Double {
        let y = try Tensor.noGrad { try f(inputs) }
        var s = 0.0
        for i in 0..<y.count { s += Double(y.pointer[i]) * Double(w.pointer[i]) }
        return s
    }
    for (k, x) in inputs.enumerated() where x.requiresGrad {
        guard let g = x.grad else { XCTFail("input \(k) got no gradient", file: file, line: line); continue }
        XCTAssertEqual(g.shape, x.shape, file: file, line: line)
        var indices = Array(0..<x.count)
        if indices.count > maxChecks { var gen = rng; indices.shuffle(using: &gen); indices = Array(indices.prefix(maxChecks)) }
        var numeric: [Float] = [], analytic: [Float] = []
        for i in indices {
            let old = x.pointer[i]
            x.pointer[i] = old + eps
            let lp = try loss()
            x.pointer[i] = old - eps
            let lm = try loss()
            x.pointer[i] = old
            numeric.append(Float((lp - lm) / Double(2 * eps)))
            analytic.append(g.pointer[i])
        }
        let scale = numeric.map { abs($0) }.max() ?? 0
        for (j, i) in indices.enumerated() {
            let tol = atol + rtol * scale + rtol * abs(numeric[j])
            if abs(numeric[j] - analytic[j]) > tol {
                XCTFail("input \(k) \(shapeString(x.shape)) entry \(i): autograd \(analytic[j]) vs finite difference \(numeric[j]) (tol \(tol))", file: file, line: line)
                break
            }
        }
    }
}

/// A tensor of random normals that requires grad.
func randn(_ shape: [Int], seed: UInt64, scale: Float = 1, requiresGrad: Bool = true) -> Tensor {
    let t = SeededNoise(seed: seed).normal(shape) * scale
    return Tensor(shape: t.shape, storage: t.storage, requiresGrad: requiresGrad)
}
