import CKernels

// Matrix products and the linear layer's op, on OpenBLAS sgemm.

extension Tensor {
    /// Matrix product of 2-D tensors (m, k) @ (k, n), or batched 3-D (b, m, k) @ (b, k, n);
    /// a 2-D operand is broadcast over the other's batch.
    public func matmul(_ other: Tensor) throws -> Tensor {
        let a = self, b = other
        guard (a.rank == 2 || a.rank == 3) && (b.rank == 2 || b.rank == 3) else {
            throw SpaceError.shape(op: "matmul", message: "\(shapeString(a.shape)) @ \(shapeString(b.shape)): need 2-D or 3-D")
        }
        let (m, k) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (k2, n) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let ba = a.rank == 3 ? a.shape[0] : 1, bb = b.rank == 3 ? b.shape[0] : 1
        guard k == k2, ba == bb || a.rank == 2 || b.rank == 2 else {
            throw SpaceError.shape(op: "matmul", message: "\(shapeString(a.shape)) @ \(shapeString(b.shape))")
        }
        let batch = Swift.max(ba, bb)
        let outShape = (a.rank == 3 || b.rank == 3) ? [batch, m, n] : [m, n]
        let out = Storage(count: batch * m * n)
        let sA = a.rank == 3 ? m * k : 0, sB = b.rank == 3 ? k * n : 0
        sk_matmul(out.pointer, a.pointer, b.pointer, Int64(batch), Int64(m), Int64(k), Int64(n), 0, 0, 1, 0,
                  Int64(sA), Int64(sB), Int64(m * n))
        Profiler.describe("\(batch)x\(m)x\(k) @ \(k)x\(n)", flops: 2.0 * Double(batch * m * k * n))
        return Tensor.result(outShape, out, name: "matmul", inputs: [a, b]) { g in
            var ga: Tensor? = nil, gb: Tensor? = nil
            if a.requiresGrad {
                // dA_b = G_b @ B_b^T, summed over the batch when A was broadcast.
                let full = Storage(count: batch * m * k)
                sk_matmul(full.pointer, g.pointer, b.pointer, Int64(batch), Int64(m), Int64(n), Int64(k), 0, 1, 1, 0,
                          Int64(m * n), Int64(sB), Int64(m * k))
                let t = Tensor(shape: [batch, m, k], storage: full)
                ga = a.rank == 3 ? t : try t.sum(dim: 0)
            }
            if b.requiresGrad {
                let full = Storage(count: batch * k * n)
                sk_matmul(full.pointer, a.pointer, g.pointer, Int64(batch), Int64(k), Int64(m), Int64(n), 1, 0, 1, 0,
                          Int64(sA), Int64(m * n), Int64(k * n))
                let t = Tensor(shape: [batch, k, n], storage: full)
                gb = b.rank == 3 ? t : try t.sum(dim: 0)
            }
            return [ga, gb]
        }
    }
}

/// y = x W^T + b, as torch.nn.functional.linear. x: (..., in), weight: (out, in), bias: (out).
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
    guard weight.rank == 2, x.rank >= 1, x.shape[x.rank - 1] == weight.shape[1] else {
        throw SpaceError.shape(op: "linear", message: "input \(shapeString(x.shape)) with weight \(shapeString(weight.shape)) (expects input's last dim = weight's dim 1)")
    }
    let (outF, inF) = (weight.shape[0], weight.shape[1])
    if let bias, bias.shape != [outF] {
        throw SpaceError.shape(op: "linear", message: "bias \(shapeString(bias.shape)) for weight \(shapeString(weight.shape))")
    }
    let rows = x.count / Swift.max(inF, 1)
    var outShape = x.shape; outShape[outShape.count - 1] = outF
    let out = Storage(count: rows * outF)
    if let bias {
        for r in 0..<rows { (out.pointer + r * outF).update(from: bias.pointer, count: outF) }
    }
    sk_matmul(out.pointer, x.pointer, weight.pointer, 1, Int64(rows), Int64(inF), Int64(outF), 0, 1, 1, bias == nil ? 0 : 1, 0, 0, 0)
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return Tensor.result(outShape, out, name: "linear", inputs: inputs) { g in
        var gx: Tensor? = nil, gw: Tensor? = nil, gb: Tensor? = nil
        if x.requiresGrad {
            let s = Storage(count: x.count)
            sk_matmul(s.pointer, g.pointer, weight.pointer, 1, Int64(rows), Int64(outF), Int64(inF), 0, 0, 1, 0, 0, 0, 0)
            gx = Tensor(shape: x.shape, storage: s)
        }
        if weight.requiresGrad {
            let s = Storage(count: weight.count)
            sk_matmul(s.pointer, g.pointer, x.pointer, 1, Int64(outF), Int64(rows), Int64(inF), 1, 0, 1, 0, 0, 0, 0)
            gw = Tensor(shape: weight.shape, storage: s)
        }
        if let bias, bias.requiresGrad {
            let s = Storage(count: outF)
            sk_sum_dim_forward(s.pointer, g.pointer, 1, Int64(rows), Int64(outF))
            gb = Tensor(shape: [outF], storage: s)
        }
        return bias == nil ? [gx, gw] : [gx, gw, gb]
    }
}
