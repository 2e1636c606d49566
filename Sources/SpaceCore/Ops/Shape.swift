import CKernels

// Shape ops: reshape, permute, expand, concatenate, split, chunk, narrow, index_select, repeat,
// repeat_interleave, pixel_shuffle. Reshape shares storage (tensors are contiguous); the others copy.

extension Tensor {
    /// The same values in a new shape; one dimension may be -1 (inferred). Shares storage.
    public func reshape(_ newShape: [Int]) throws -> Tensor {
        var s = newShape
        let known = s.filter { $0 != -1 }.reduce(1, *)
        let inferred = s.filter { $0 == -1 }.count
        if inferred == 1, known > 0, count % known == 0, let i = s.firstIndex(of: -1) { s[i] = count / known }
        guard inferred <= 1, s.allSatisfy({ $0 >= 0 }), s.reduce(1, *) == count else {
            throw SpaceError.shape(op: "reshape", message: "cannot view \(shapeString(shape)) (\(count) elements) as \(shapeString(newShape))")
        }
        let inShape = shape
        return Tensor.result(s, storage, name: "reshape", inputs: [self]) { g in [try g.reshape(inShape)] }
    }

    /// Alias of `reshape`, PyTorch's `view`.
    public func view(_ newShape: Int...) throws -> Tensor { try reshape(newShape) }

    /// Flattens dimensions `start...end` into one.
    public func flatten(start: Int = 0, end: Int = -1) throws -> Tensor {
        if rank == 0 { return try reshape([1]) }
        let s = try Tensor.normalizeDim(start, rank: rank, op: "flatten"), e = try Tensor.normalizeDim(end, rank: rank, op: "flatten")
        guard s <= e else { throw SpaceError.argument(op: "flatten", message: "start \(start) after end \(end)") }
        return try reshape(Array(shape[..<s]) + [shape[s...e].reduce(1, *)] + Array(shape[(e + 1)...]))
    }

    public func unsqueeze(dim: Int) throws -> Tensor {
        let d = dim < 0 ? dim + rank + 1 : dim
        guard d >= 0 && d <= rank else { throw SpaceError.argument(op: "unsqueeze", message: "dimension \(dim) for rank \(rank)") }
        var s = shape; s.insert(1, at: d)
        return try reshape(s)
    }

    public func squeeze(dim: Int) throws -> Tensor {
        let d = try Tensor.normalizeDim(dim, rank: rank, op: "squeeze")
        guard shape[d] == 1 else { return self }
        var s = shape; s.remove(at: d)
        return try reshape(s)
    }

    /// Reorders dimensions: result dim i is input dim `dims[i]`.
    public func permute(_ dims: [Int]) throws -> Tensor {
        let ds = try dims.map { try Tensor.normalizeDim($0, rank: rank, op: "permute") }
        guard ds.count == rank, Set(ds).count == rank else {
            throw SpaceError.argument(op: "permute", message: "\(dims) is not a permutation of the \(rank) dims of \(shapeString(shape))")
        }
        if ds == Array(0..<rank) { return self }
        let own = strides
        let outShape = ds.map { shape[$0] }
        let xs = ds.map { Int64(own[$0]) }
        let out = Storage(count: count)
        sk_strided_copy(out.pointer, pointer, outShape.map(Int64.init), xs, Int64(rank))
        var inverse = [Int](repeating: 0, count: rank)
        for (i, d) in ds.enumerated() { inverse[d] = i }
        return Tensor.result(outShape, out, name: "permute", inputs: [self]) { g in [try g.permute(inverse)] }
    }

    public func permute(_ dims: Int...) throws -> Tensor { try permute(dims) }

    public func transpose(_ a: Int, _ b: Int) throws -> Tensor {
        var p = Array(0..<rank)
        let i = try Tensor.normalizeDim(a, rank: rank, op: "transpose"), j = try Tensor.normalizeDim(b, rank: rank, op: "transpose")
        p.swapAt(i, j)
        return try permute(p)
    }

    /// Broadcasts to `target` (size-1 dims repeat; leading dims may be added; -1 keeps a size). Copies.
    public func expand(_ target: [Int]) throws -> Tensor {
        let pad = target.count - rank
        guard pad >= 0 else { throw SpaceError.shape(op: "expand", message: "\(shapeString(shape)) to \(shapeString(target))") }
        var t = target
        for i in 0..<target.count {
            if t[i] == -1 { guard i >= pad else { throw SpaceError.shape(op: "expand", message: "-1 in a new leading dim of \(shapeString(target))") }; t[i] = shape[i - pad] }
            if i >= pad && shape[i - pad] != 1 && shape[i - pad] != t[i] {
                throw SpaceError.shape(op: "expand", message: "cannot expand \(shapeString(shape)) to \(shapeString(target))")
            }
        }
        if t == shape { return self }
        let xs = broadcastStrides(shape, to: t)
        let out = Storage(count: t.reduce(1, *))
        guard t.count <= Int(SK_MAX_DIMS) else { throw SpaceError.argument(op: "expand", message: "more than \(SK_MAX_DIMS) dims") }
        sk_strided_copy(out.pointer, pointer, t.map(Int64.init), xs, Int64(t.count))
        let inShape = shape
        return Tensor.result(t, out, name: "expand", inputs: [self]) { g in [try g.sumTo(inShape)] }
    }

    public func expand(_ target: Int...) throws -> Tensor { try expand(target) }

    /// Concatenates along `dim`; all other dims must agree.
    public static func cat(_ tensors: [Tensor], dim: Int) throws -> Tensor {
        guard let first = tensors.first else { throw SpaceError.argument(op: "cat", message: "no tensors") }
        let d = try normalizeDim(dim, rank: first.rank, op: "cat")
        for t in tensors {
            var a = t.shape, b = first.shape
            guard a.count == b.count else { throw SpaceError.shape(op: "cat", message: "\(shapeString(t.shape)) with \(shapeString(first.shape))") }
            a[d] = 0; b[d] = 0
            guard a == b else { throw SpaceError.shape(op: "cat", message: "\(shapeString(t.shape)) with \(shapeString(first.shape)) along dim \(d)") }
        }
        let m = tensors.reduce(0) { $0 + $1.shape[d] }
        var outShape = first.shape; outShape[d] = m
        let outer = first.shape[..<d].reduce(1, *), inner = first.shape[(d + 1)...].reduce(1, *)
        let out = Storage(count: outer * m * inner)
        var at = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(at)
            sk_copy_block(out.pointer, Int64(m), Int64(at), t.pointer, Int64(outer), Int64(t.shape[d]), Int64(inner))
            at += t.shape[d]
        }
        return result(outShape, out, name: "cat", inputs: tensors) { g in
            zip(tensors, offsets).map { t, off in
                guard t.requiresGrad else { return nil }
                let gs = Storage(count: t.count)
                sk_take_block(gs.pointer, g.pointer, Int64(m), Int64(off), Int64(outer), Int64(t.shape[d]), Int64(inner))
                return Tensor(shape: t.shape, storage: gs)
            }
        }
    }

    /// Stacks equal-shaped tensors along a new dimension `dim`.
    public static func stack(_ tensors: [Tensor], dim: Int) throws -> Tensor {
        try cat(tensors.map { try $0.unsqueeze(dim: dim) }, dim: dim)
    }

    /// Elements `start ..< start+length` along `dim`.
    public func narrow(dim: Int, start: Int, length: Int) throws -> Tensor {
        let d = try Tensor.normalizeDim(dim, rank: rank, op: "narrow")
        guard start >= 0, length >= 0, start + length <= shape[d] else {
            throw SpaceError.argument(op: "narrow", message: "range \(start)..<\(start + length) of dim \(d) in \(shapeString(shape))")
        }
        if start == 0 && length == shape[d] { return self }
        let (outer, m, inner) = around(d)
        var outShape = shape; outShape[d] = length
        let out = Storage(count: outer * length * inner)
        sk_take_block(out.pointer, pointer, Int64(m), Int64(start), Int64(outer), Int64(length), Int64(inner))
        let inShape = shape
        return Tensor.result(outShape, out, name: "narrow", inputs: [self]) { g in
            let gx = Tensor.zeros(inShape)
            sk_copy_block_add(gx.pointer, Int64(m), Int64(start), g.pointer, Int64(outer), Int64(length), Int64(inner))
            return [gx]
        }
    }

    /// The slice at `index` along `dim`, with that dim removed (x[:, i] in PyTorch).
    public func select(dim: Int, index: Int) throws -> Tensor {
        let d = try Tensor.normalizeDim(dim, rank: rank, op: "select")
        let i = index < 0 ? index + shape[d] : index
        return try narrow(dim: d, start: i, length: 1).squeeze(dim: d)
    }

    /// Splits into pieces of the given sizes along `dim` (torch.split with a list).
    public func split(sizes: [Int], dim: Int) throws -> [Tensor] {
        let d = try Tensor.normalizeDim(dim, rank: rank, op: "split")
        guard sizes.reduce(0, +) == shape[d], sizes.allSatisfy({ $0 >= 0 }) else {
            throw SpaceError.shape(op: "split", message: "sizes \(sizes) do not add up to dim \(d) of \(shapeString(shape))")
        }
        var at = 0
        return try sizes.map { n in defer { at += n }; return try narrow(dim: d, start: at, length: n) }
    }

    /// Splits into pieces of `size` along `dim`, the last possibly smaller (torch.split with an int).
    public func split(size: Int, dim: Int) throws -> [Tensor] {
        let d = try Tensor.normalizeDim(dim, rank: rank, op: "split")
        guard size > 0 else { throw SpaceError.argument(op: "split", message: "size \(size)") }
        var sizes: [Int] = []
        var left = shape[d]
        while left > 0 { sizes.append(Swift.min(size, left)); left -= size }
        return try split(sizes: sizes, dim: d)
    }

    /// torch.chunk: `chunks` pieces of ceil(n / chunks) along `dim` (fewer if the size runs out).
    public func chunk(_ chunks: Int, dim: Int) throws -> [Tensor] {
        let d = try Tensor.normalizeDim(dim, rank: rank, op: "chunk")
        guard chunks > 0 else { throw SpaceError.argument(op: "chunk", message: "chunks \(chunks)") }
        let size = (shape[d] + chunks - 1) / chunks
        return try split(size: Swift.max(size, 1), dim: d)
    }

    /// Picks entries `indices` along `dim` (torch.index_select).
    public func indexSelect(dim: Int, _ indices: [Int]) throws -> Tensor {
        let d = try Tensor.normalizeDim(dim, rank: rank, op: "index_select")
        let (outer, n, inner) = around(d)
        var outShape = shape; outShape[d] = indices.count
        let idx = indices.map(Int64.init)
        let out = Storage(count: outer * indices.count * inner)
        let status = sk_index_select_forward(out.pointer, pointer, idx, Int64(indices.count), Int64(outer), Int64(n), Int64(inner))
        guard status == SK_OK else {
            throw SpaceError.argument(op: "index_select", message: "index out of range for dim \(d) of size \(n) in \(shapeString(shape))")
        }
        let inShape = shape
        return Tensor.result(outShape, out, name: "index_select", inputs: [self]) { g in
            let gx = Tensor.zeros(inShape)
            sk_index_select_backward(gx.pointer, g.pointer, idx, Int64(idx.count), Int64(outer), Int64(n), Int64(inner))
            return [gx]
        }
    }

    /// torch.repeat_interleave(x, repeats, dim): each entry along `dim` repeated `repeats` times in place
    /// ([a, b] -> [a, a, b, b]).
    public func repeatInterleave(_ repeats: Int, dim: Int) throws -> Tensor {
        let d = try Tensor.normalizeDim(dim, rank: rank, op: "repeat_interleave")
        guard repeats >= 0 else { throw SpaceError.argument(op: "repeat_interleave", message: "repeats \(repeats)") }
        return try indexSelect(dim: d, (0..<shape[d]).flatMap { Array(repeating: $0, count: repeats) })
    }

    /// torch.Tensor.repeat: tiles the whole tensor `counts[i]` times along dim i ([a, b] -> [a, b, a, b]).
    public func repeatTiled(_ counts: [Int]) throws -> Tensor {
        guard counts.count >= rank else { throw SpaceError.argument(op: "repeat", message: "\(counts.count) counts for rank \(rank)") }
        let pad = counts.count - rank
        let full = [Int](repeating: 1, count: pad) + shape
        var interleaved: [Int] = [], target: [Int] = []
        for (c, s) in zip(counts, full) { interleaved += [1, s]; target += [c, s] }
        return try reshape(interleaved).expand(target).reshape(zip(counts, full).map { $0 * $1 })
    }

    /// pixel_shuffle: (N, C r^2, H, W) -> (N, C, H r, W r).
    public func pixelShuffle(_ r: Int) throws -> Tensor {
        guard rank == 4, r > 0, shape[1] % (r * r) == 0 else {
            throw SpaceError.shape(op: "pixel_shuffle", message: "input \(shapeString(shape)) with upscale factor \(r)")
        }
        let (n, c, h, w) = (shape[0], shape[1] / (r * r), shape[2], shape[3])
        return try reshape([n, c, r, r, h, w]).permute([0, 1, 4, 2, 5, 3]).reshape([n, c, h * r, w * r])
    }
}
