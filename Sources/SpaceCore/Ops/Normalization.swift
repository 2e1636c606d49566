import CKernels
import Dispatch
import Foundation

// Normalisation ops: group norm and batch norm on (N, C, *) tensors, as torch.nn.functional.group_norm
// and batch_norm. Statistics are the biased ones; batch norm's running variance is updated with the
// unbiased one, in place and outside autograd, exactly as PyTorch.

/// Checks x (N, C, *) and the optional per-channel parameters, returning (N, C, S) with S the spatial size.
private func normDims(_ x: Tensor, _ params: [(String, Tensor?)], op: String) throws -> (Int, Int, Int) {
    guard x.rank >= 2 else {
        throw SpaceError.shape(op: op, message: "input \(shapeString(x.shape)) must be (N, C, *) with at least 2 dims")
    }
    let c = x.shape[1]
    for (name, p) in params {
        if let p, p.shape != [c] {
            throw SpaceError.shape(op: op, message: "\(name) \(shapeString(p.shape)) for input \(shapeString(x.shape)) (expects [\(c)])")
        }
    }
    return (x.shape[0], c, x.shape[2...].reduce(1, *))
}

/// How many threads to give `total` independent items costing `work` floats in all: one per core,
/// but only once there are ~64k floats per thread to amortise the hand-off.
private func normThreads(_ total: Int, work: Int) -> Int {
    Swift.max(1, Swift.min(normCores, total, work / (1 << 16)))
}

private var normCores: Int { KernelThreads.count }

/// Runs `body(t, range)` for `threads` contiguous chunks of 0..<total, concurrently.
private func normChunks(_ total: Int, threads: Int, _ body: (Int, Range<Int>) -> Void) {
    if threads <= 1 { body(0, 0..<total); return }
    KernelThreads.run(parts: threads) { t, parts in
        body(t, KernelThreads.slice(total, part: t, parts: parts))
    }
}

/// Group normalisation, as torch.nn.functional.group_norm.
///
/// x (N, C, *): the C channels are split into `groups` consecutive groups; each (sample, group) is
/// normalised by its mean and biased variance over the group's channels and all positions,
/// y = (x - mean) / sqrt(var + eps), then scaled by `weight` (C) and shifted by `bias` (C) per channel.
/// Differentiable with respect to x, weight and bias.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) throws -> Tensor {
    let (n, c, s) = try normDims(x, [("weight", weight), ("bias", bias)], op: "group_norm")
    guard groups > 0, c % groups == 0 else {
        throw SpaceError.shape(op: "group_norm", message: "input \(shapeString(x.shape)) has \(c) channels, not divisible into \(groups) groups")
    }
    let out = Storage(count: x.count)
    let mean = Storage(count: n * groups), rstd = Storage(count: n * groups)
    let perSample = c * s
    // Each sample is independent: split the batch across threads.
    normChunks(n, threads: normThreads(n, work: x.count)) { _, r in
        guard !r.isEmpty else { return }
        _ = sk_group_norm_forward(out.pointer + r.lowerBound * perSample, mean.pointer + r.lowerBound * groups,
                                  rstd.pointer + r.lowerBound * groups, x.pointer + r.lowerBound * perSample,
                                  weight?.pointer, bias?.pointer, Int64(r.count), Int64(c), Int64(s), Int64(groups), eps)
    }
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    return Tensor.result(x.shape, out, name: "group_norm", inputs: inputs) { g in
        let gx = x.requiresGrad ? Tensor.zeros(x.shape) : nil
        let wantW = weight?.requiresGrad == true, wantB = bias?.requiresGrad == true
        // Per-channel gradients sum over the batch: each thread fills its own row, summed after.
        let threads = normThreads(n, work: x.count)
        let gw = Tensor.zeros([threads, c]), gb = Tensor.zeros([threads, c])
        normChunks(n, threads: threads) { t, r in
            guard !r.isEmpty else { return }
            _ = sk_group_norm_backward(gx.map { $0.pointer + r.lowerBound * perSample },
                                       wantW ? gw.pointer + t * c : nil, wantB ? gb.pointer + t * c : nil,
                                       g.pointer + r.lowerBound * perSample, mean.pointer + r.lowerBound * groups,
                                       rstd.pointer + r.lowerBound * groups, x.pointer + r.lowerBound * perSample,
                                       weight?.pointer, Int64(r.count), Int64(c), Int64(s), Int64(groups))
        }
        var grads: [Tensor?] = [gx]
        if weight != nil { grads.append(wantW ? try gw.sum(dim: 0) : nil) }
        if bias != nil { grads.append(wantB ? try gb.sum(dim: 0) : nil) }
        return grads
    }
}

/// Batch normalisation, as torch.nn.functional.batch_norm (BatchNorm1d on (N, C) or (N, C, L),
/// BatchNorm2d on (N, C, H, W)).
///
/// Training: each channel is normalised by its batch mean and biased variance over N and all positions,
/// and `runningMean` / `runningVar` (C) are updated IN PLACE (not recorded) as
/// running = (1 - momentum) * running + momentum * batch, with the unbiased variance (M / (M - 1),
/// M = N * positions) for `runningVar`. Needs more than one value per channel.
/// Evaluation: normalises by the running statistics (which stay constants of the graph).
/// Then y = x_hat * weight + bias per channel. Differentiable with respect to x, weight and bias.
public func batchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor, runningVar: Tensor,
                      training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) throws -> Tensor {
    let (n, c, s) = try normDims(x, [("weight", weight), ("bias", bias), ("running_mean", runningMean),
                                     ("running_var", runningVar)], op: "batch_norm")
    if training && n * s < 2 {
        throw SpaceError.shape(op: "batch_norm", message: "expected more than 1 value per channel when training, got input \(shapeString(x.shape))")
    }
    let out = Storage(count: x.count)
    let mean = Storage(count: c), rstd = Storage(count: c)
    let status = sk_batch_norm_forward(out.pointer, mean.pointer, rstd.pointer, runningMean.pointer, runningVar.pointer,
                                       x.pointer, weight?.pointer, bias?.pointer, Int64(n), Int64(c), Int64(s),
                                       training ? 1 : 0, momentum, eps)
    guard status == SK_OK else {
        throw SpaceError.shape(op: "batch_norm", message: "input \(shapeString(x.shape)) rejected by the kernel (status \(status))")
    }
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    return Tensor.result(x.shape, out, name: "batch_norm", inputs: inputs) { g in
        let gx = x.requiresGrad ? Tensor.zeros(x.shape) : nil
        let gw = weight?.requiresGrad == true ? Tensor.zeros([c]) : nil
        let gb = bias?.requiresGrad == true ? Tensor.zeros([c]) : nil
        sk_batch_norm_backward(gx?.pointer, gw?.pointer, gb?.pointer, g.pointer, mean.pointer, rstd.pointer,
                               x.pointer, weight?.pointer, Int64(n), Int64(c), Int64(s), training ? 1 : 0)
        var grads: [Tensor?] = [gx]
        if weight != nil { grads.append(gw) }
        if bias != nil { grads.append(gb) }
        return grads
    }
}
