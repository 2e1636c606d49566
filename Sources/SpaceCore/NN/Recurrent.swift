// The LSTM cell.

/// One step of an LSTM (torch.nn.LSTMCell), with PyTorch's parameter names and gate order.
///
/// Input x (N, inputSize) and state (h, c), each (N, hiddenSize) (zeros when nil); returns (h', c').
/// Parameters: `weight_ih` (4 hiddenSize, inputSize), `weight_hh` (4 hiddenSize, hiddenSize),
/// `bias_ih` and `bias_hh` (4 hiddenSize), all initialised U(-1/sqrt(hiddenSize), 1/sqrt(hiddenSize))
/// in that order. The four row blocks of the weights are the gates i, f, g, o:
///
///     gates = (h W_hh^T + b_hh) + (x W_ih^T + b_ih)      (PyTorch's CPU order)
///     i, f, g, o = chunk(gates, 4, dim: 1)
///     i, f, o = sigmoid(i, f, o);  g = tanh(g)
///     c' = f * c + i * g
///     h' = o * tanh(c')
///
/// The gradient through a saturated sigmoid or tanh underflows to 0 (|gate| beyond ~17 or ~9 in float32).
public final class LSTMCell: Module {
    public let inputSize: Int
    public let hiddenSize: Int
    @StateKey("weight_ih") public var weightIH: Tensor
    @StateKey("weight_hh") public var weightHH: Tensor
    @StateKey("bias_ih") public var biasIH: Tensor?
    @StateKey("bias_hh") public var biasHH: Tensor?

    public init(inputSize: Int, hiddenSize: Int, bias: Bool = true, noise: SeededNoise = ParameterInit.defaultNoise) {
        precondition(inputSize > 0 && hiddenSize > 0, "LSTMCell(inputSize: \(inputSize), hiddenSize: \(hiddenSize))")
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        super.init()
        let bound = ParameterInit.defaultBound(fanIn: hiddenSize)
        weightIH = ParameterInit.uniform([4 * hiddenSize, inputSize], bound: bound, noise: noise)
        weightHH = ParameterInit.uniform([4 * hiddenSize, hiddenSize], bound: bound, noise: noise)
        biasIH = bias ? ParameterInit.uniform([4 * hiddenSize], bound: bound, noise: noise) : nil
        biasHH = bias ? ParameterInit.uniform([4 * hiddenSize], bound: bound, noise: noise) : nil
    }

    /// One step from `state` (zeros when nil). x: (N, inputSize); h, c: (N, hiddenSize).
    public func callAsFunction(_ x: Tensor, state: (h: Tensor, c: Tensor)? = nil) throws -> (h: Tensor, c: Tensor) {
        guard x.rank == 2, x.shape[1] == inputSize else {
            throw SpaceError.shape(op: "LSTMCell", message: "input \(shapeString(x.shape)), expected (N, \(inputSize))")
        }
        let n = x.shape[0]
        let (h, c) = state ?? (Tensor.zeros([n, hiddenSize]), Tensor.zeros([n, hiddenSize]))
        guard h.shape == [n, hiddenSize], c.shape == [n, hiddenSize] else {
            throw SpaceError.shape(op: "LSTMCell", message: "state h \(shapeString(h.shape)), c \(shapeString(c.shape)) for input \(shapeString(x.shape)), expected (\(n), \(hiddenSize)) each")
        }
        let gates = try linear(h, weight: weightHH, bias: biasHH) + linear(x, weight: weightIH, bias: biasIH)
        let g = try gates.chunk(4, dim: 1)
        let ingate = g[0].sigmoid(), forgetgate = g[1].sigmoid(), cellgate = g[2].tanh(), outgate = g[3].sigmoid()
        let c2 = try forgetgate * c + ingate * cellgate
        let h2 = try outgate * c2.tanh()
        return (h2, c2)
    }
}
