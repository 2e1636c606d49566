import SpaceCore

/// The reference's `spatial_transform`: crops glimpses out of images (`inverse: false`) or pastes
/// glimpses back onto full-size canvases (`inverse: true`) with affine_grid + bilinear grid_sample
/// (zeros padding, align_corners = false).
///
/// z_where is (N, 4) = (scale_x, scale_y, shift_x, shift_y). The forward transform is
/// theta = [[sx, 0, tx], [0, sy, ty]]; the inverse is [[1/(sx+1e-9), 0, -tx/(sx+1e-9)],
/// [0, 1/(sy+1e-9), -ty/(sy+1e-9)]]. `imageIndex[n]` names the image glimpse n reads from (so the
/// B images need not be repeated G*G times in memory); nil means image n.
public func spatialTransform(_ image: Tensor, zWhere: Tensor, outSize: [Int], inverse: Bool,
                             imageIndex: [Int]? = nil) throws -> Tensor {
    guard zWhere.rank == 2, zWhere.shape[1] == 4 else {
        throw SpaceError.shape(op: "spatial_transform", message: "z_where \(shapeString(zWhere.shape)), expected (N, 4)")
    }
    let n = zWhere.shape[0]
    let parts = try zWhere.split(sizes: [1, 1, 1, 1], dim: 1)
    var (sx, sy, tx, ty) = (parts[0], parts[1], parts[2], parts[3])
    if inverse {
        let dx = sx + 1e-9, dy = sy + 1e-9
        tx = try -(tx / dx)
        ty = try -(ty / dy)
        sx = dx.reciprocal()
        sy = dy.reciprocal()
    }
    let zero = Tensor.zeros([n, 1])
    let theta = try Tensor.stack([Tensor.cat([sx, zero, tx], dim: 1), Tensor.cat([zero, sy, ty], dim: 1)], dim: 1)
    let grid = try affineGrid(theta: theta, size: outSize)
    return try gridSample(image, grid: grid, imageIndex: imageIndex)
}
