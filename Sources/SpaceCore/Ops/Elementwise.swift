import CKernels

// Elementwise ops: broadcasting binary arithmetic, scalar arithmetic, and unary maps.
// Gradients of broadcast inputs are reduced back to the input's shape in one place: `sumTo(_:)`.

/// The shape two shapes broadcast to (NumPy/PyTorch rules), or a thrown error naming the op.
public func broadcastShape(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
    let n = max(a.count, b.count)
    var out = [Int](repeating: 1, count: n)
    for i in 0..<n {
        let da = i < n - a.count ? 1 : a[i - (n - a.count)]
        let db = i < n - b.count ? 1 : b[i - (n - b.count)]
        guard da == db || da == 1 || db == 1 else {
            throw SpaceError.shape(op: op, message: "cannot broadcast \(shapeString(a)) with \(shapeString(b))")
        }
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Strides (in elements) that read a contiguous tensor of `shape` as if expanded to `target`.
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int64] {
    let pad = target.count - shape.count
    let own = Tensor.contiguousStrides(shape)
    return (0..<target.count).map { i in
        i < pad ? 0 : (shape[i - pad] == 1 && target[i] != 1 ? 0 : Int64(own[i - pad]))
    }
}

extension Tensor {
    static func binary(_ a: Tensor, _ b: Tensor, _ op: sk_binary_op, name: String,
                       backward: @escaping (Tensor, Tensor) throws -> [Tensor?]) throws -> Tensor {
        let shape = try broadcastShape(a.shape, b.shape, op: name)
        let n = shape.reduce(1, *)
        let out = Storage(count: n)
        let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
        let dims = shape.map(Int64.init)
        if shape.count > Int(SK_MAX_DIMS) {
            throw SpaceError.argument(op: name, message: "at most \(SK_MAX_DIMS) dimensions, got \(shape.count)")
        }
        sk_binary_forward(out.pointer, a.pointer, sa, b.pointer, sb, dims, Int64(shape.count), Int32(op.rawValue))
        return result(shape, out, name: name, inputs: [a, b]) { g in try backward(g, Tensor(shape: shape, storage: out)) }
    }

    /// Sums a broadcast gradient back down to `target` (the shape of the input that was broadcast).
    public func sumTo(_ target: [Int]) throws -> Tensor {
        if shape == target { return self }
        let pad = shape.count - target.count
        guard pad >= 0 else { throw SpaceError.shape(op: "sumTo", message: "\(shapeString(shape)) to \(shapeString(target))") }
        var dims: [Int] = Array(0..<pad)
        for i in 0..<target.count where target[i] == 1 && shape[i + pad] != 1 { dims.append(i + pad) }
        let reduced = try sum(dims: dims, keepDim: true)
        return try reduced.reshape(target)
    }

    public static func + (a: Tensor, b: Tensor) throws -> Tensor {
        try binary(a, b, SK_ADD, name: "add") { g, _ in [try g.sumTo(a.shape), try g.sumTo(b.shape)] }
    }

    public static func - (a: Tensor, b: Tensor) throws -> Tensor {
        try binary(a, b, SK_SUB, name: "sub") { g, _ in [try g.sumTo(a.shape), try (-g).sumTo(b.shape)] }
    }

    public static func * (a: Tensor, b: Tensor) throws -> Tensor {
        try binary(a, b, SK_MUL, name: "mul") { g, _ in
            [a.requiresGrad ? try (g * b).sumTo(a.shape) : nil, b.requiresGrad ? try (g * a).sumTo(b.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) throws -> Tensor {
        try binary(a, b, SK_DIV, name: "div") { g, out in
            [a.requiresGrad ? try (g / b).sumTo(a.shape) : nil,
             b.requiresGrad ? try (-(g * out) / b).sumTo(b.shape) : nil]
        }
    }

    /// a * x + b with scalars a, b.
    public func affine(scale a: Float, shift b: Float) -> Tensor {
        let out = Storage(count: count)
        sk_affine_scalar(out.pointer, pointer, Int64(count), a, b)
        return Tensor.result(shape, out, name: "affine", inputs: [self]) { g in [g.affine(scale: a, shift: 0)] }
    }

    public static func + (a: Tensor, b: Float) -> Tensor { a.affine(scale: 1, shift: b) }
    public static func + (a: Float, b: Tensor) -> Tensor { b.affine(scale: 1, shift: a) }
    public static func - (a: Tensor, b: Float) -> Tensor { a.affine(scale: 1, shift: -b) }
    public static func - (a: Float, b: Tensor) -> Tensor { b.affine(scale: -1, shift: a) }
    public static func * (a: Tensor, b: Float) -> Tensor { a.affine(scale: b, shift: 0) }
    public static func * (a: Float, b: Tensor) -> Tensor { b.affine(scale: a, shift: 0) }
    public static func / (a: Tensor, b: Float) -> Tensor { a.affine(scale: 1 / b, shift: 0) }
    public static func / (a: Float, b: Tensor) -> Tensor { b.reciprocal() * a }
    public static prefix func - (a: Tensor) -> Tensor { a.unary(SK_NEG, name: "neg") }

    func unary(_ op: sk_unary_op, _ param: Float = 0, name: String) -> Tensor {
        let out = Storage(count: count)
        let opCode = Int32(op.rawValue)
        sk_unary_forward(out.pointer, pointer, Int64(count), opCode, param)
        // Keep for backward only what the derivative reads: the output for exp, sigmoid, tanh, sqrt and
        // reciprocal, the input for the others (both for CELU / ELU), so the graph holds no dead tensor.
        let fromOutput: Set<sk_unary_op> = [SK_EXP, SK_SIGMOID, SK_TANH, SK_SQRT, SK_RECIPROCAL]
        let both: Set<sk_unary_op> = [SK_CELU, SK_ELU]
        let x: Tensor? = fromOutput.contains(op) && !both.contains(op) ? nil : self
        let y: Storage? = fromOutput.contains(op) || both.contains(op) ? out : nil
        let (n, inShape) = (count, shape)
        return Tensor.result(shape, out, name: name, inputs: [self]) { g in
            let gx = Tensor.zeros(inShape)
            sk_unary_backward(gx.pointer, g.pointer, x?.pointer, y?.pointer, Int64(n), opCode, param)
            return [gx]
        }
    }

    public func exp() -> Tensor { unary(SK_EXP, name: "exp") }
    /// log(x); its gradient 1/x is infinite at 0, as in PyTorch (callers add an eps where the reference does).
    public func log() -> Tensor { unary(SK_LOG, name: "log") }
    public func log1p() -> Tensor { unary(SK_LOG1P, name: "log1p") }
    public func sqrt() -> Tensor { unary(SK_SQRT, name: "sqrt") }
    /// |x|; gradient sign(x), 0 at 0.
    public func abs() -> Tensor { unary(SK_ABS, name: "abs") }
    public func sigmoid() -> Tensor { unary(SK_SIGMOID, name: "sigmoid") }
    /// tanh(x); its gradient 1 - tanh^2 underflows to 0 where tanh saturates (|x| > ~9 in float32).
    public func tanh() -> Tensor { unary(SK_TANH, name: "tanh") }
    /// PyTorch's softplus with beta 1: x where x > threshold (default 20), else log(1 + e^x).
    public func softplus(threshold: Float = 20) -> Tensor { unary(SK_SOFTPLUS, threshold, name: "softplus") }
    /// CELU: max(0, x) + min(0, alpha (e^(x/alpha) - 1)).
    public func celu(alpha: Float = 1) -> Tensor { unary(SK_CELU, alpha, name: "celu") }
    /// ELU: x for x > 0, alpha (e^x - 1) otherwise.
    public func elu(alpha: Float = 1) -> Tensor { unary(SK_ELU, alpha, name: "elu") }
    public func relu() -> Tensor { unary(SK_RELU, name: "relu") }
    public func square() -> Tensor { unary(SK_SQUARE, name: "square") }
    public func reciprocal() -> Tensor { unary(SK_RECIPROCAL, name: "reciprocal") }
    public func pow(_ p: Float) -> Tensor { unary(SK_POW, p, name: "pow") }
    /// Clamps into [min, max]; the gradient passes where x lies inside the closed interval (PyTorch).
    public func clamp(min lo: Float? = nil, max hi: Float? = nil) -> Tensor {
        var y = self
        if let lo { y = y.unary(SK_CLAMP_MIN, lo, name: "clamp") }
        if let hi { y = y.unary(SK_CLAMP_MAX, hi, name: "clamp") }
        return y
    }
    /// sign(x) (no gradient).
    public func sign() -> Tensor { unary(SK_SIGN, name: "sign") }
}
