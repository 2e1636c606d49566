import CKernels
import Dispatch
import Foundation

// SPACE's foreground compositing as one fused op: paste every cell's glimpse back onto its image's canvas
// (affine_grid + bilinear grid_sample at the inverse transform) and blend the cells with a softmax of
// their pasted importance maps, visiting only each cell's box instead of materialising (N, C, H, W)
// canvases. Equal in value and gradient to the composite of affineGrid, gridSample, softmax over the
// cells, multiply and sum (tested against it); the kernels are in CKernels/composite.c.

/// The inverse transform of SPACE's z_where (N, 4) = (sx, sy, tx, ty), as the (N, 4) affine parameters
/// (ax, bx, ay, by) = (1/(sx + 1e-9), -tx/(sx + 1e-9), 1/(sy + 1e-9), -ty/(sy + 1e-9)) that
/// `compositeGlimpses` takes: canvas point (x, y) samples glimpse point (ax x + bx, ay y + by).
/// The same ops, in the same order, as the reference's `spatial_transform(..., inverse=True)`; differentiable.
public func glimpseInverseAffine(zWhere: Tensor) throws -> Tensor {
    guard zWhere.rank == 2, zWhere.shape[1] == 4 else {
        throw SpaceError.shape(op: "glimpse_inverse_affine", message: "z_where \(shapeString(zWhere.shape)), expected (N, 4)")
    }
    let parts = try zWhere.split(sizes: [1, 1, 1, 1], dim: 1)
    let dx = parts[0] + 1e-9, dy = parts[1] + 1e-9
    return try Tensor.cat([dx.reciprocal(), -(parts[2] / dx), dy.reciprocal(), -(parts[3] / dy)], dim: 1)
}

/// Pastes N = B * cellsPerImage glimpses onto B canvases and blends them, as SPACE's foreground does.
///
/// - `weighted` (N, Cv, Hg, Wg): the glimpse maps blended by the softmax weights (SPACE: y_att and
///   alpha_att_hat concatenated, Cv = 4);
/// - `importance` (N, 1, Hg, Wg): the glimpse importance logits;
/// - `summed` (N, Cs, Hg, Wg), optional: glimpse maps pasted and summed without weights (SPACE: the
///   boundary kernel times z_pres, Cs = 1);
/// - `affine` (N, 4) = (ax, bx, ay, by) per cell (see `glimpseInverseAffine`): canvas pixel (i, j), at
///   x = (2j + 1)/W - 1, y = (2i + 1)/H - 1, samples glimpse point (ax x + bx, ay y + by) bilinearly with
///   zeros padding — exactly affine_grid(theta = [[ax, 0, bx], [0, ay, by]]) then grid_sample, both
///   align_corners=False.
///
/// Cells are image-major: cell n belongs to image n / cellsPerImage. Returns, for image b and pixel p,
/// `weighted` (B, Cv, H, W) = sum_n paste_n(weighted)(p) * softmax_n(paste_n(importance)(p)), the softmax
/// over all cells of the image (a cell that does not reach p has importance 0 there, as in the reference's
/// full-size maps), and `summed` (B, Cs, H, W) = sum_n paste_n(summed)(p) (nil without `summed`).
/// Differentiable with respect to all four inputs; one recorded backward computes every gradient.
/// Images run in parallel, one contiguous range per core.
public func compositeGlimpses(weighted values: Tensor, importance: Tensor, summed: Tensor?, affine: Tensor,
                              cellsPerImage: Int, canvas: (height: Int, width: Int)) throws -> (weighted: Tensor, summed: Tensor?) {
    let op = "composite_glimpses"
    func describe() -> String {
        "weighted \(shapeString(values.shape)), importance \(shapeString(importance.shape)), summed "
            + (summed.map { shapeString($0.shape) } ?? "nil") + ", affine \(shapeString(affine.shape))"
    }
    guard values.rank == 4 else { throw SpaceError.shape(op: op, message: describe() + ": weighted must be (N, Cv, Hg, Wg)") }
    let (n, cv, hg, wg) = (values.shape[0], values.shape[1], values.shape[2], values.shape[3])
    guard importance.shape == [n, 1, hg, wg] else {
        throw SpaceError.shape(op: op, message: describe() + ": importance must be (N, 1, Hg, Wg) = \(shapeString([n, 1, hg, wg]))")
    }
    if let summed, !(summed.rank == 4 && summed.shape[0] == n && summed.shape[2] == hg && summed.shape[3] == wg) {
        throw SpaceError.shape(op: op, message: describe() + ": summed must be (N, Cs, Hg, Wg) with N = \(n), Hg = \(hg), Wg = \(wg)")
    }
    guard affine.shape == [n, 4] else {
        throw SpaceError.shape(op: op, message: describe() + ": affine must be (N, 4) = \(shapeString([n, 4]))")
    }
    guard cellsPerImage >= 1, n % cellsPerImage == 0 else {
        throw SpaceError.shape(op: op, message: describe() + ": \(n) cells do not split into images of \(cellsPerImage) cells")
    }
    let (h, w) = canvas
    guard h >= 1, w >= 1, hg >= 1, wg >= 1 else {
        throw SpaceError.argument(op: op, message: "canvas \(h) x \(w) and glimpses \(hg) x \(wg) must be non-empty")
    }
    let g2 = cellsPerImage, b = n / g2, cs = summed?.shape[1] ?? 0, c = cv + cs
    let sizes = CompositeSizes(g2: g2, cv: cv, cs: cs, hg: hg, wg: wg, h: h, w: w)
    let out = Storage(count: b * c * h * w), lse = Storage(count: b * h * w)
    try sizes.run(images: b) { r in
        let (cell, image) = (r.lowerBound * g2, r.lowerBound)
        return sk_composite_forward(out.pointer + image * c * h * w, lse.pointer + image * h * w,
                                    values.pointer + cell * cv * hg * wg, importance.pointer + cell * hg * wg,
                                    summed.map { $0.pointer + cell * cs * hg * wg }, affine.pointer + cell * 4,
                                    Int64(r.count), Int64(g2), Int64(cv), Int64(cs), Int64(hg), Int64(wg), Int64(h), Int64(w))
    }
    let inputs = summed.map { [values, importance, $0, affine] } ?? [values, importance, affine]
    let joint = Tensor.result([b, c, h, w], out, name: op, inputs: inputs) { g in
        let gv = values.requiresGrad ? Tensor.zeros(values.shape) : nil
        let gi = importance.requiresGrad ? Tensor.zeros(importance.shape) : nil
        let gs = summed.flatMap { $0.requiresGrad ? Tensor.zeros($0.shape) : nil }
        let ga = affine.requiresGrad ? Tensor.zeros(affine.shape) : nil
        try sizes.run(images: b) { r in
            let (cell, image) = (r.lowerBound * g2, r.lowerBound)
            return sk_composite_backward(gv.map { $0.pointer + cell * cv * hg * wg }, gi.map { $0.pointer + cell * hg * wg },
                                         gs.map { $0.pointer + cell * cs * hg * wg }, ga.map { $0.pointer + cell * 4 },
                                         g.pointer + image * c * h * w, out.pointer + image * c * h * w, lse.pointer + image * h * w,
                                         values.pointer + cell * cv * hg * wg, importance.pointer + cell * hg * wg,
                                         summed.map { $0.pointer + cell * cs * hg * wg }, affine.pointer + cell * 4,
                                         Int64(r.count), Int64(g2), Int64(cv), Int64(cs), Int64(hg), Int64(wg), Int64(h), Int64(w))
        }
        return summed == nil ? [gv, gi, ga] : [gv, gi, gs, ga]
    }
    guard cs > 0 else { return (joint, nil) }
    // One node with both outputs stacked on the channels (so one backward serves both), split into views.
    return (try joint.narrow(dim: 1, start: 0, length: cv), try joint.narrow(dim: 1, start: cv, length: cs))
}

/// The sizes of one compositeGlimpses call and how its images are split over threads.
private struct CompositeSizes {
    let g2: Int, cv: Int, cs: Int, hg: Int, wg: Int, h: Int, w: Int

    /// Runs `kernel` on contiguous ranges of the images, one per core (images are independent in both
    /// directions: forward writes only its images' canvases, backward only their cells' gradients), and
    /// throws if any range reports a bad status.
    func run(images: Int, _ kernel: (Range<Int>) -> Int32) throws {
        let threads = Swift.max(1, Swift.min(KernelThreads.count, images))
        let ranges = (0..<threads).map { t in (images * t / threads)..<(images * (t + 1) / threads) }.filter { !$0.isEmpty }
        let status = UnsafeMutablePointer<Int32>.allocate(capacity: Swift.max(ranges.count, 1))
        defer { status.deallocate() }
        status.initialize(repeating: SK_OK, count: Swift.max(ranges.count, 1))
        if ranges.count == 1 {
            status[0] = kernel(ranges[0])
        } else if ranges.count > 1 {
            KernelThreads.run(parts: ranges.count) { t, _ in status[t] = kernel(ranges[t]) }
        }
        for t in 0..<ranges.count where status[t] != SK_OK {
            throw SpaceError.argument(op: "composite_glimpses", message: "kernel status \(status[t]) for G2 = \(g2), Cv = \(cv), "
                                      + "Cs = \(cs), glimpse \(hg) x \(wg), canvas \(h) x \(w)")
        }
    }
}
