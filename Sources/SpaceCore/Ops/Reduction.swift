import CKernels

// Reductions: sum and mean over dimensions, max (not differentiated), logsumexp and softmax.

extension Tensor {
    /// (outer, n, inner) view of this tensor around dimension `d`.
    func around(_ d: Int) -> (Int, Int, Int) {
        let outer = shape[..<d].reduce(1, *), inner = shape[(d + 1)...].reduce(1, *)
        return (outer, shape[d], inner)
    }

    /// Sum over one dimension.
    public func sum(dim: Int, keepDim: Bool = false) throws -> Tensor {
        let d = try Tensor.normalizeDim(dim, rank: rank, op: "sum")
        let (outer, n, inner) = around(d)
        var kept = shape; kept[d] = 1
        let out = Storage(count: outer * inner)
        sk_sum_dim_forward(out.pointer, pointer, Int64(outer), Int64(n), Int64(inner))
        var outShape = kept
        if !keepDim { outShape.remove(at: d) }
        let inShape = shape
        return Tensor.result(outShape, out, name: "sum", inputs: [self]) { g in
            let gx = Tensor.zeros(inShape)
            sk_sum_dim_backward(gx.pointer, g.pointer, Int64(outer), Int64(n), Int64(inner))
            return [gx]
        }
    }

    /// Sum over several dimensions (all when `dims` is nil).
    public func sum(dims: [Int]? = nil, keepDim: Bool = false) throws -> Tensor {
        let ds = try (dims ?? Array(0..<rank)).map { try Tensor.normalizeDim($0, rank: rank, op: "sum") }
        guard Set(ds).count == ds.count else { throw SpaceError.argument(op: "sum", message: "repeated dimension in \(ds)") }
        var y = self
        for d in ds.sorted(by: >) { y = try y.sum(dim: d, keepDim: keepDim) }
        return y
    }

    /// Mean over one dimension.
    public func mean(dim: Int, keepDim: Bool = false) throws -> Tensor {
        let d = try Tensor.normalizeDim(dim, rank: rank, op: "mean")
        return try sum(dim: d, keepDim: keepDim) / Float(shape[d])
    }

    /// Mean over several dimensions (all when `dims` is nil).
    public func mean(dims: [Int]? = nil, keepDim: Bool = false) throws -> Tensor {
        let ds = try (dims ?? Array(0..<rank)).map { try Tensor.normalizeDim($0, rank: rank, op: "mean") }
        let n = ds.reduce(1) { $0 * shape[$1] }
        return try sum(dims: ds, keepDim: keepDim) / Float(n)
    }

    /// Maximum over one dimension. Not differentiated: the result is cut from the graph.
    public func max(dim: Int, keepDim: Bool = false) throws -> Tensor {
        let d = try Tensor.normalizeDim(dim, rank: rank, op: "max")
        let (outer, n, inner) = around(d)
        let out = Storage(count: outer * inner)
        sk_max_dim_forward(out.pointer, pointer, Int64(outer), Int64(n), Int64(inner))
        var outShape = shape
        if keepDim { outShape[d] = 1 } else { outShape.remove(at: d) }
        return Tensor(shape: outShape, storage: out)
    }

    /// log(sum(exp(x))) over `dim`, stabilised by the (detached) maximum, as torch.logsumexp.
    public func logsumexp(dim: Int, keepDim: Bool = false) throws -> Tensor {
        let d = try Tensor.normalizeDim(dim, rank: rank, op: "logsumexp")
        let m = try max(dim: d, keepDim: true)
        // An all -inf slice has max -inf; shift by 0 there instead (result stays -inf, no NaN).
        let mp = m.pointer
        for i in 0..<m.count where mp[i].isInfinite { mp[i] = 0 }
        let s = try (self - m).exp().sum(dim: d, keepDim: true).log() + m
        return keepDim ? s : try s.squeeze(dim: d)
    }

    /// softmax over `dim`: exp(x - logsumexp(x)).
    public func softmax(dim: Int) throws -> Tensor {
        try (self - logsumexp(dim: dim, keepDim: true)).exp()
    }

    /// log_softmax over `dim`.
    public func logSoftmax(dim: Int) throws -> Tensor {
        try self - logsumexp(dim: dim, keepDim: true)
    }
}
