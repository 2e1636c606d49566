import SpaceCore

// Small builders that keep the architecture listings close to the paper's tables.

/// Conv2d(in, out, kernel, stride, padding), PyTorch's positional order.
func conv(_ i: Int, _ o: Int, _ k: Int, _ s: Int = 1, _ p: Int = 0) -> Conv2d {
    Conv2d(inputChannels: i, outputChannels: o, kernelSize: k, stride: s, padding: p)
}

/// GroupNorm(groups, channels), PyTorch's positional order.
func gn(_ g: Int, _ c: Int) -> GroupNorm { GroupNorm(groups: g, channels: c) }

func bn(_ c: Int) -> BatchNorm2d { BatchNorm2d(channels: c) }

/// (B, D, G, G) -> (B, G*G, D): one row per grid cell, row-major over the grid.
func cellsLast(_ x: Tensor) throws -> Tensor {
    let (b, d, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    return try x.permute(0, 2, 3, 1).reshape([b, h * w, d])
}

/// The loc and a softplus(.) + minScale scale from a (B, 2D) prediction: first half loc, second half scale.
func locAndScale(_ x: Tensor, dim: Int, minScale: Float) throws -> (Tensor, Tensor) {
    let halves = try x.split(sizes: [dim, x.shape[1] - dim], dim: 1)
    return (halves[0], halves[1].softplus() + minScale)
}
