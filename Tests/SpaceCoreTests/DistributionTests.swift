import XCTest
@testable import SpaceCore

/// Expected values below were computed in float64 with Python's math module from the formulas in
/// the doc comments (the same as PyTorch's), then pasted in.
final class DistributionTests: XCTestCase {
    // MARK: Normal

    func testNormalLogProbByHand() throws {
        let n = try Normal(loc: Tensor([-0.2, 0.0, 1.0, 0.0], shape: [4]), scale: Tensor([0.5, 1.0, 2.5, 0.1], shape: [4]))
        let lp = try n.logProb(Tensor([0.3, 1.5, -2.0, 0.0], shape: [4]))
        assertClose(lp.array, [-0.7257913526447274, -2.0439385332046727, -2.555229265078828, 1.3836465597893728], rtol: 1e-6)
    }

    func testNormalKLByHand() throws {
        let p = try Normal(loc: Tensor([0.3, 1.0, 0.0, -1.5], shape: [4]), scale: Tensor([0.5, 2.0, 1.0, 0.2], shape: [4]))
        let q = try Normal(loc: Tensor([-0.2, 0.0, 0.0, 0.5], shape: [4]), scale: Tensor([1.0, 1.0, 1.0, 0.7], shape: [4]))
        assertClose(try klDivergence(p, q).array, [0.4431471805599453, 1.3068528194400546, 0.0, 4.8752119480872045], rtol: 1e-6)
    }

    func testNormalKLBroadcastsAScalarPrior() throws {
        // SPACE's priors are 0-dim buffers broadcast against (B, G*G, D) posteriors.
        let p = try Normal(loc: randn([2, 3, 4], seed: 1, requiresGrad: false), scale: Tensor.full([2, 3, 4], 0.5))
        let q = try Normal(loc: Tensor(scalar: 0), scale: Tensor(scalar: 1))
        let kl = try klDivergence(p, q)
        XCTAssertEqual(kl.shape, [2, 3, 4])
        let expected = p.loc.array.map { m in 0.5 * (0.25 + m * m - 1 - Foundation.log(Float(0.25))) }
        assertClose(kl.array, expected, rtol: 1e-5)
    }

    func testNormalRsampleIsLocPlusEpsScale() throws {
        let eps = try Tensor([0.5, -1.0, 2.0, 0.0, 1.5, -0.25], shape: [2, 3])
        let noise = ReplayNoise(["fg.z_what": eps])
        let loc = try Tensor([1, 2, 3], shape: [3], requiresGrad: true)
        let scale = try Tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], shape: [2, 3], requiresGrad: true)
        let n = try Normal(loc: loc, scale: scale)
        XCTAssertEqual(n.batchShape, [2, 3])
        let z = try n.rsample(noise: noise, name: "fg.z_what")
        assertClose(z.array, [1.05, 1.8, 3.6, 1.0, 2.75, 2.85], rtol: 1e-6)
        XCTAssertEqual(noise.requested, ["fg.z_what"])
        try z.sum().backward()
        assertClose(loc.grad!.array, [2, 2, 2])
        assertClose(scale.grad!.array, eps.array)
        XCTAssertFalse(try n.sample(noise: ReplayNoise(["x": eps]), name: "x").requiresGrad)
        XCTAssertThrowsError(try Normal(loc: Tensor.zeros([2]), scale: Tensor.ones([3])))
    }

    func testNormalGradCheck() throws {
        let x = randn([3, 4], seed: 1), loc = randn([3, 4], seed: 2)
        let scale = randn([3, 4], seed: 3, requiresGrad: false).abs() + 0.5
        let s = Tensor(shape: scale.shape, storage: scale.storage, requiresGrad: true)
        try gradCheck([x, loc, s]) { _ in try Normal(loc: loc, scale: s).logProb(x) }
        let loc2 = randn([3, 4], seed: 4)
        let scale2 = Tensor(shape: [3, 4], storage: (randn([3, 4], seed: 5, requiresGrad: false).abs() + 0.5).storage, requiresGrad: true)
        try gradCheck([loc, s, loc2, scale2]) { _ in
            try klDivergence(Normal(loc: loc, scale: s), Normal(loc: loc2, scale: scale2))
        }
    }

    // MARK: Relaxed Bernoulli

    func testRelaxedBernoulliRsampleByHand() throws {
        // Entries 4 and 5 sit on the clamps: logits 25 (p -> 1 - eps) and logits -30 with u = 0.
        let logits = try Tensor([0.3, -1.2, 2.0, 25.0, -30.0], shape: [5])
        let u = try Tensor([0.25, 0.9, 0.5, 0.3, 0.0], shape: [5])
        let d = NumericalRelaxedBernoulli(logits: logits, temperature: 2.5)
        let y = try d.rsample(noise: ReplayNoise(["fg.z_pres": u]), name: "fg.z_pres")
        assertClose(y.array, [-0.31944491546724374, 0.3988898309344878, 0.7999999999999995, 6.038034869312897, -12.753908026935557],
                    rtol: 1e-5)
        XCTAssertEqual(NumericalRelaxedBernoulli.eps, 1.1920929e-07)
    }

    func testRelaxedBernoulliGradientIsInverseTemperatureInsideAndZeroOnTheClamp() throws {
        let logits = try Tensor([0.3, -4.0, 20.0, -20.0], shape: [4], requiresGrad: true)
        let d = NumericalRelaxedBernoulli(logits: logits, temperature: 0.5)
        let y = try d.rsample(noise: ReplayNoise(["u": Tensor([0.4, 0.6, 0.5, 0.5], shape: [4])]), name: "u")
        try y.sum().backward()
        // d/dl (log p - log(1 - p)) = 1 inside the clamp, 0 where sigmoid(l) is clamped.
        assertClose(logits.grad!.array, [2, 2, 0, 0], rtol: 1e-3, atol: 1e-3)
    }

    func testRelaxedBernoulliLogProbByHand() throws {
        let d = NumericalRelaxedBernoulli(logits: try Tensor([0.3, -1.2, 2.0], shape: [3]), temperature: 0.7)
        let lp = try d.logProb(Tensor([0.5, 2.0, -1.0], shape: [3]))
        assertClose(lp.array, [-1.743594239965305, -3.099964327874072, -3.186762067491914], rtol: 1e-6)
    }

    func testRelaxedBernoulliGradCheck() throws {
        let logits = randn([6], seed: 3, scale: 2)
        let u = SeededNoise(seed: 4).uniform([6])
        try gradCheck([logits], eps: 1e-3) { _ in
            try NumericalRelaxedBernoulli(logits: logits, temperature: 0.8).rsample(noise: ReplayNoise(["u": u]), name: "u")
        }
        let value = randn([6], seed: 5)
        try gradCheck([logits, value]) { _ in
            try NumericalRelaxedBernoulli(logits: logits, temperature: 0.8).logProb(value)
        }
    }

    // MARK: Bernoulli KL

    func testBernoulliKLByHand() throws {
        // logits -40: sigmoid is ~4e-18, the eps keeps log(p + eps) finite.
        let kl = try klDivergenceBernoulli(logits: Tensor([0.3, -2.0, 4.0, -40.0], shape: [4]), priorProb: 0.1)
        assertClose(kl.array, [0.6855172424382443, 0.0019422505279080328, 2.172970582646025, 0.10536051565782614], rtol: 2e-6)
        XCTAssertTrue(kl.array.allSatisfy(\.isFinite))
        let asTensor = try klDivergenceBernoulli(logits: Tensor([0.3, -2.0], shape: [2]), priorProb: Tensor(scalar: 0.1))
        assertClose(asTensor.array, [0.6855172424382443, 0.0019422505279080328], rtol: 2e-6)
    }

    func testBernoulliKLGradCheckAndFiniteAtSaturation() throws {
        let logits = randn([2, 5], seed: 8, scale: 2)
        try gradCheck([logits]) { _ in try klDivergenceBernoulli(logits: logits, priorProb: 0.3) }
        let saturated = try Tensor([-40, 40], shape: [2], requiresGrad: true)
        try klDivergenceBernoulli(logits: saturated, priorProb: 0.1).sum().backward()
        XCTAssertTrue(saturated.grad!.array.allSatisfy(\.isFinite))
    }
}
