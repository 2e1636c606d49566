import XCTest
@testable import SpaceCore

final class RecurrentTests: XCTestCase {
    /// An LSTMCell(1, 1) with the given gate rows: W_ih, W_hh, b_ih, b_hh each list the i, f, g, o entries.
    private func cell(wih: [Float], whh: [Float], bih: [Float], bhh: [Float] = [0, 0, 0, 0]) throws -> LSTMCell {
        let c = LSTMCell(inputSize: 1, hiddenSize: 1)
        try c.loadStateDict([
            "weight_ih": Tensor(wih, shape: [4, 1]), "weight_hh": Tensor(whh, shape: [4, 1]),
            "bias_ih": Tensor(bih, shape: [4]), "bias_hh": Tensor(bhh, shape: [4]),
        ])
        return c
    }

    func testKeysShapesAndInitialisation() throws {
        let c = LSTMCell(inputSize: 5, hiddenSize: 16, noise: SeededNoise(seed: 3))
        XCTAssertEqual(c.namedParameters().map(\.0), ["weight_ih", "weight_hh", "bias_ih", "bias_hh"])
        XCTAssertEqual(c.namedParameters().map(\.1.shape), [[64, 5], [64, 16], [64], [64]])
        for p in c.parameters() {
            XCTAssertTrue(p.requiresGrad)
            XCTAssertTrue(p.array.allSatisfy { abs($0) <= 0.25 }, "outside U(-1/sqrt(H), 1/sqrt(H))")
        }
        XCTAssertEqual(LSTMCell(inputSize: 2, hiddenSize: 3, bias: false).namedParameters().map(\.0), ["weight_ih", "weight_hh"])
    }

    /// Each gate gets a different pre-activation, so any other gate order gives other numbers.
    /// Expected values from Python's math module: i = s(0.5), f = s(-1), g = tanh(2), o = s(0.3), c = 0.7.
    func testGateOrderIFGO() throws {
        let c = try cell(wih: [0, 0, 0, 0], whh: [0, 0, 0, 0], bih: [0.5, -1.0, 2.0, 0.3])
        let (h2, c2) = try c(Tensor([3], shape: [1, 1]), state: (Tensor([0.4], shape: [1, 1]), Tensor([0.7], shape: [1, 1])))
        assertClose(c2.array, [0.7883269577131319], rtol: 1e-6)
        assertClose(h2.array, [0.3776731019470948], rtol: 1e-6)
    }

    /// Only the cell gate g (third block of W_ih) is nonzero: i = f = o = 0.5, g = tanh(x).
    func testOnlyCellGateFromInput() throws {
        let c = try cell(wih: [0, 0, 1, 0], whh: [0, 0, 0, 0], bih: [0, 0, 0, 0])
        let (h2, c2) = try c(Tensor([0.8], shape: [1, 1]), state: (Tensor([5], shape: [1, 1]), Tensor([-0.3], shape: [1, 1])))
        assertClose(c2.array, [0.18201838513392457], rtol: 1e-6)
        assertClose(h2.array, [0.09001726987179848], rtol: 1e-6)
    }

    /// Only the output gate (fourth block of W_hh) is nonzero and fed by h: o = s(2 h), g = 0, c' = c / 2.
    func testOnlyOutputGateFromHidden() throws {
        let c = try cell(wih: [0, 0, 0, 0], whh: [0, 0, 0, 2], bih: [0, 0, 0, 0])
        let (h2, c2) = try c(Tensor([9], shape: [1, 1]), state: (Tensor([0.4], shape: [1, 1]), Tensor([0.6], shape: [1, 1])))
        assertClose(c2.array, [0.3], rtol: 1e-6)
        assertClose(h2.array, [0.2009982686222157], rtol: 1e-6)
    }

    func testZeroStateDefaultAndBiasesBothCount() throws {
        // With no state: h = c = 0, so only the biases (b_ih + b_hh) drive the gates.
        let c = try cell(wih: [0, 0, 0, 0], whh: [0, 0, 0, 0], bih: [0.25, 0, 1.0, 0], bhh: [0.25, 0, 1.0, 0.3])
        let (h2, c2) = try c(Tensor([1], shape: [1, 1]))
        let i = 1 / (1 + Foundation.exp(-0.5)), g = Foundation.tanh(2.0), o = 1 / (1 + Foundation.exp(-0.3))
        assertClose(c2.array, [Float(i * g)], rtol: 1e-6)
        assertClose(h2.array, [Float(o * Foundation.tanh(i * g))], rtol: 1e-6)
    }

    func testShapeErrors() throws {
        let c = LSTMCell(inputSize: 3, hiddenSize: 2)
        XCTAssertThrowsError(try c(Tensor.zeros([4, 2])))
        XCTAssertThrowsError(try c(Tensor.zeros([4, 3]), state: (Tensor.zeros([4, 2]), Tensor.zeros([3, 2]))))
        let (h, cc) = try c(Tensor.zeros([4, 3]))
        XCTAssertEqual(h.shape, [4, 2])
        XCTAssertEqual(cc.shape, [4, 2])
    }

    func testGradCheck() throws {
        let c = LSTMCell(inputSize: 3, hiddenSize: 4, noise: SeededNoise(seed: 17))
        let x = randn([2, 3], seed: 1), h = randn([2, 4], seed: 2), c0 = randn([2, 4], seed: 3)
        // Both outputs enter the checked scalar.
        try gradCheck([x, h, c0, c.weightIH, c.weightHH, c.biasIH!, c.biasHH!]) { _ in
            let (h2, c2) = try c(x, state: (h, c0))
            return try Tensor.cat([h2, c2], dim: 1)
        }
    }

    /// The reference's background LSTM loads one to one from the parity weights.
    func testLoadsReferenceWeights() throws {
        let path = FixturePaths.parity("atari_si_b2_s100")! + "/weights.safetensors"
        let file = try SafeTensors.load(path: path)
        let prefix = "bg_module.rnn_mask."
        var state: [String: StateValue] = [:]
        for key in file.keys where key.hasPrefix(prefix) { state[String(key.dropFirst(prefix.count))] = file[key] }
        let hidden = try file.tensor(prefix + "weight_hh").shape[1]
        let input = try file.tensor(prefix + "weight_ih").shape[1]
        let c = LSTMCell(inputSize: input, hiddenSize: hidden)
        try c.loadStateDict(state)
        XCTAssertEqual(c.weightIH.array, try file.tensor(prefix + "weight_ih").array)
        XCTAssertEqual(c.biasHH!.array[0], -0.07032808661460876)
    }
}
