import CKernels
import Dispatch
import Foundation

// The spatial transformer: affine_grid and bilinear grid_sample (zeros padding, align_corners=False),
// as torch.nn.functional. SPACE crops glimpses with them (grid_sample of the images at grids built from
// z_where) and pastes decoded glimpses back (grid_sample of the glimpses at the inverse grids).

/// The affine sampling grid of torch.nn.functional.affine_grid with align_corners=False.
///
/// theta (N, 2, 3), size [N, C, H, W] -> grid (N, H, W, 2) with grid[n, i, j] = theta[n] @ (x_j, y_i, 1)
/// at the pixel centres x_j = (2j + 1)/W - 1, y_i = (2i + 1)/H - 1. Differentiable with respect to theta.
public func affineGrid(theta: Tensor, size: [Int]) throws -> Tensor {
    guard theta.rank == 3, theta.shape[1] == 2, theta.shape[2] == 3 else {
        throw SpaceError.shape(op: "affine_grid", message: "theta \(shapeString(theta.shape)) must be (N, 2, 3)")
    }
    guard size.count == 4, size[0] == theta.shape[0] else {
        throw SpaceError.shape(op: "affine_grid", message: "size \(shapeString(size)) for theta \(shapeString(theta.shape)) (expects [N, C, H, W] with N = \(theta.shape[0]))")
    }
    guard size.allSatisfy({ $0 > 0 }) else {
        throw SpaceError.argument(op: "affine_grid", message: "size \(shapeString(size)) must be positive")
    }
    let (n, h, w) = (size[0], size[2], size[3])
    let out = Storage(count: n * h * w * 2)
    // Grids are independent per batch entry: large ones (SPACE's paste-back grids) are split over threads.
    let parts = SamplePlan.split(n, work: n * h * w * 2)
    SamplePlan.run(parts) { _, r in
        sk_affine_grid_forward(out.pointer + r.lowerBound * h * w * 2, theta.pointer + r.lowerBound * 6,
                               Int64(r.count), Int64(h), Int64(w))
    }
    return Tensor.result([n, h, w, 2], out, name: "affine_grid", inputs: [theta]) { g in
        let gt = Tensor.zeros(theta.shape)
        SamplePlan.run(parts) { _, r in
            sk_affine_grid_backward(gt.pointer + r.lowerBound * 6, g.pointer + r.lowerBound * h * w * 2,
                                    Int64(r.count), Int64(h), Int64(w))
        }
        return [gt]
    }
}

/// Bilinear sampling, as torch.nn.functional.grid_sample(mode="bilinear", padding_mode="zeros",
/// align_corners=False).
///
/// input (Nin, C, Hin, Win); grid (Ng, Hout, Wout, 2) holding (x, y) in [-1, 1] (-1 the left/top edge of
/// the image, not the first pixel centre) -> output (Ng, C, Hout, Wout). The source position is
/// ix = ((x + 1) * Win - 1) / 2 (iy likewise); taps outside the image read 0.
/// Grid entry b samples image `imageIndex[b]` (values in 0..<Nin), so many grids can read one image
/// without copying it (SPACE's glimpses: imageIndex[b] = b / (G*G)); without `imageIndex`, Ng must
/// equal Nin and entry b reads image b. Differentiable with respect to input and grid (the grid
/// gradient is PyTorch's, zero for positions entirely outside the image).
public func gridSample(_ input: Tensor, grid: Tensor, imageIndex: [Int]? = nil) throws -> Tensor {
    guard input.rank == 4, grid.rank == 4, grid.shape[3] == 2 else {
        throw SpaceError.shape(op: "grid_sample", message: "input \(shapeString(input.shape)) must be (N, C, H, W) and grid \(shapeString(grid.shape)) (N, H, W, 2)")
    }
    let (nIn, c, hIn, wIn) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let (nG, hOut, wOut) = (grid.shape[0], grid.shape[1], grid.shape[2])
    var index: [Int64]? = nil
    if let imageIndex {
        guard imageIndex.count == nG else {
            throw SpaceError.shape(op: "grid_sample", message: "\(imageIndex.count) image indices for grid \(shapeString(grid.shape))")
        }
        if let bad = imageIndex.first(where: { $0 < 0 || $0 >= nIn }) {
            throw SpaceError.argument(op: "grid_sample", message: "image index \(bad) out of range for input \(shapeString(input.shape))")
        }
        index = imageIndex.map(Int64.init)
    } else if nG != nIn {
        throw SpaceError.shape(op: "grid_sample", message: "input \(shapeString(input.shape)) and grid \(shapeString(grid.shape)) batch sizes differ (pass imageIndex)")
    }
    let plan = SamplePlan(nIn: nIn, c: c, hIn: hIn, wIn: wIn, nG: nG, hOut: hOut, wOut: wOut, index: index)
    let out = Storage(count: nG * c * hOut * wOut)
    plan.forward(out.pointer, input.pointer, grid.pointer)
    return Tensor.result([nG, c, hOut, wOut], out, name: "grid_sample", inputs: [input, grid]) { g in
        let gi = input.requiresGrad ? Tensor.zeros(input.shape) : nil
        let gg = grid.requiresGrad ? Tensor.zeros(grid.shape) : nil
        plan.backward(gi?.pointer, gg?.pointer, g.pointer, input.pointer, grid.pointer)
        return [gi, gg]
    }
}

/// How a grid_sample call is split over threads (the static helpers serve affine_grid too): contiguous
/// ranges of grid entries, each handed to the C kernel with offset pointers. Backward's input gradient
/// is scattered, so ranges reading the same image would race: with an image index, range boundaries
/// move to where the image changes, and when that cannot separate them (an unsorted index) the extra
/// threads scatter into private buffers, added up afterwards.
private struct SamplePlan {
    let nIn: Int, c: Int, hIn: Int, wIn: Int, nG: Int, hOut: Int, wOut: Int
    let index: [Int64]?

    static var cores: Int { KernelThreads.count }

    /// Splits 0..<count into one contiguous range per thread, a single range unless there is at least
    /// ~32k floats of `work` per thread to pay for the hand-off. With `separating`, a cut between i - 1
    /// and i moves forward while `separating(i)` is false (keeps runs of one image in one range).
    static func split(_ count: Int, work: Int, separating: ((Int) -> Bool)? = nil) -> [Range<Int>] {
        let threads = Swift.max(1, Swift.min(cores, count, work / (1 << 15)))
        if threads == 1 { return [0..<count] }
        var cuts = [0]
        for t in 1..<threads {
            var cut = Swift.max(count * t / threads, cuts.last!)
            if let separating { while cut > 0 && cut < count && !separating(cut) { cut += 1 } }
            cuts.append(Swift.min(cut, count))
        }
        cuts.append(count)
        return zip(cuts, cuts.dropFirst()).map { $0..<$1 }.filter { !$0.isEmpty }
    }

    /// Runs `body(t, parts[t])` for every part, concurrently when there are several.
    static func run(_ parts: [Range<Int>], _ body: (Int, Range<Int>) -> Void) {
        if parts.count == 1 { body(0, parts[0]); return }
        KernelThreads.run(parts: parts.count) { t, _ in body(t, parts[t]) }
    }

    /// Contiguous ranges of grid entries, one per thread.
    func ranges(separatingImages: Bool) -> [Range<Int>] {
        let work = nG * hOut * wOut * Swift.max(c, 1)
        guard separatingImages, let index else { return SamplePlan.split(nG, work: work) }
        return SamplePlan.split(nG, work: work) { index[$0] != index[$0 - 1] }
    }

    /// Whether each image's grid entries form one contiguous run (so cuts at changes separate images).
    var indexIsSorted: Bool {
        guard let index else { return true }
        return zip(index, index.dropFirst()).allSatisfy { $0 <= $1 }
    }

    func forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafeMutablePointer<Float>, _ grid: UnsafeMutablePointer<Float>) {
        let parts = ranges(separatingImages: false)
        withIndex { idx in
            SamplePlan.run(parts) { _, r in
                let (img, nImg, ix) = source(r, input, idx)
                _ = sk_grid_sample_forward(out + r.lowerBound * c * hOut * wOut, img, grid + r.lowerBound * hOut * wOut * 2, ix,
                                           Int64(nImg), Int64(c), Int64(hIn), Int64(wIn), Int64(r.count), Int64(hOut), Int64(wOut))
            }
        }
    }

    func backward(_ ginput: UnsafeMutablePointer<Float>?, _ ggrid: UnsafeMutablePointer<Float>?, _ gout: UnsafeMutablePointer<Float>,
                  _ input: UnsafeMutablePointer<Float>, _ grid: UnsafeMutablePointer<Float>) {
        let parts = ranges(separatingImages: ginput != nil)
        // Threads after the first get private input-gradient buffers when their images may overlap.
        let privateBuffers = ginput != nil && parts.count > 1 && !indexIsSorted
        let extra: [Storage] = privateBuffers ? (1..<parts.count).map { _ in Storage(count: nIn * c * hIn * wIn, repeating: 0) } : []
        withIndex { idx in
            SamplePlan.run(parts) { t, r in
                var gin = ginput
                if privateBuffers && t > 0 { gin = extra[t - 1].pointer }
                let (img, nImg, ix) = source(r, input, idx)
                let gimg = gin.map { ix == nil ? $0 + r.lowerBound * c * hIn * wIn : $0 }
                _ = sk_grid_sample_backward(gimg, ggrid.map { $0 + r.lowerBound * hOut * wOut * 2 },
                                            gout + r.lowerBound * c * hOut * wOut, img, grid + r.lowerBound * hOut * wOut * 2, ix,
                                            Int64(nImg), Int64(c), Int64(hIn), Int64(wIn), Int64(r.count), Int64(hOut), Int64(wOut))
            }
        }
        if let ginput { for s in extra { sk_accumulate(ginput, s.pointer, Int64(s.count)) } }
    }

    /// The images a range of grid entries reads: with an index, all images and the range's slice of the
    /// index; without, exactly the range's own images.
    private func source(_ r: Range<Int>, _ input: UnsafeMutablePointer<Float>, _ idx: UnsafePointer<Int64>?)
        -> (UnsafeMutablePointer<Float>, Int, UnsafePointer<Int64>?) {
        if let idx { return (input, nIn, idx + r.lowerBound) }
        return (input + r.lowerBound * c * hIn * wIn, r.count, nil)
    }

    private func withIndex(_ body: (UnsafePointer<Int64>?) -> Void) {
        if let index { index.withUnsafeBufferPointer { body($0.baseAddress) } } else { body(nil) }
    }
}
