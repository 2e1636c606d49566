import SpaceCore

/// Turns image tensors and RGB buffers into PNG image summaries.
public enum ImageSummary {
    /// Interleaved 8-bit RGB pixels of an image tensor with values in [0, 1].
    ///
    /// Layouts: (3, H, W) or (1, H, W) (CHW, as the model produces), (H, W, 3) or (H, W, 1), and
    /// (H, W) grayscale; a leading batch dimension of 1 is dropped. Where a shape fits two layouts,
    /// the first that fits in this order wins: (3, H, W), (H, W, 3), (1, H, W), (H, W, 1); so (3, H, 3)
    /// is CHW and (1, W, 3) is one row of RGB pixels. Values map to bytes as torchvision's
    /// `save_image` does, 255 x + 0.5 clamped to [0, 255] and truncated; NaN becomes 0.
    public static func rgbPixels(_ tensor: Tensor) throws -> (pixels: [UInt8], width: Int, height: Int) {
        var shape = tensor.shape
        if shape.count == 4 && shape[0] == 1 { shape.removeFirst() }
        let channelsFirst: Bool, channels: Int, height: Int, width: Int
        switch shape.count {
        case 2:
            (channelsFirst, channels, height, width) = (true, 1, shape[0], shape[1])
        case 3 where shape[0] == 3:
            (channelsFirst, channels, height, width) = (true, 3, shape[1], shape[2])
        case 3 where shape[2] == 3:
            (channelsFirst, channels, height, width) = (false, 3, shape[0], shape[1])
        case 3 where shape[0] == 1:
            (channelsFirst, channels, height, width) = (true, 1, shape[1], shape[2])
        case 3 where shape[2] == 1:
            (channelsFirst, channels, height, width) = (false, 1, shape[0], shape[1])
        default:
            throw SpaceError.shape(op: "ImageSummary.rgbPixels",
                                   message: "image of shape \(shapeString(tensor.shape)); expected (3, H, W), (1, H, W), (H, W, 3), (H, W, 1) or (H, W)")
        }
        guard height > 0, width > 0 else {
            throw SpaceError.shape(op: "ImageSummary.rgbPixels", message: "empty image of shape \(shapeString(tensor.shape))")
        }
        let plane = height * width
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        let source = tensor.pointer
        pixels.withUnsafeMutableBufferPointer { out in
            for p in 0..<plane {
                for c in 0..<3 {
                    let channel = channels == 1 ? 0 : c
                    let x = channelsFirst ? source[channel * plane + p] : source[p * channels + channel]
                    out[p * 3 + c] = byte(x)
                }
            }
        }
        return (pixels, width, height)
    }

    /// A PNG image summary of an image tensor (layouts as in `rgbPixels`).
    public static func png(_ tensor: Tensor) throws -> SummaryImage {
        let (pixels, width, height) = try rgbPixels(tensor)
        return try png(rgb: pixels, width: width, height: height)
    }

    /// A PNG image summary of interleaved 8-bit RGB pixels, row-major, `width * height * 3` bytes.
    public static func png(rgb: [UInt8], width: Int, height: Int) throws -> SummaryImage {
        let encoded = try UncompressedPNG.encode(pixels: rgb, width: width, height: height, channels: 3)
        return SummaryImage(height: height, width: width, colorspace: 3, encodedImage: encoded)
    }

    /// A value in [0, 1] as a byte: torchvision's `mul(255).add(0.5).clamp(0, 255)` then truncation.
    @inline(__always) static func byte(_ x: Float) -> UInt8 {
        if x.isNaN { return 0 }
        return UInt8(Swift.min(255, Swift.max(0, x * 255 + 0.5)))
    }
}

/// Tiles images into one (C, H', W') tensor, as torchvision.utils.make_grid does: `columns` images
/// per row (torchvision's `nrow`), `padding` pixels of `padValue` around and between them, so
/// H' = rows (H + padding) + padding and W' = min(columns, n) (W + padding) + padding.
///
/// Each element of `images` is one (C, H, W) image or a batch (N, C, H, W) contributing N images,
/// in order, so `makeGrid(images: [inputs, reconstructions, foreground, background], columns: B)`
/// gives one row per kind. All images must have the same H and W; one-channel images are repeated
/// to three channels (torchvision does so for one-channel batches). As in torchvision, a single
/// image is returned as it is, without padding.
public func makeGrid(images: [Tensor], columns: Int = 8, padding: Int = 2, padValue: Float = 0) throws -> Tensor {
    let op = "makeGrid"
    guard columns > 0, padding >= 0 else {
        throw SpaceError.argument(op: op, message: "columns \(columns) and padding \(padding) (need columns > 0, padding >= 0)")
    }
    // Each image as (tensor, offset of its first value); all share (C, H, W) after channel expansion.
    var tiles: [(tensor: Tensor, offset: Int)] = []
    var channels = 1, height = -1, width = -1
    for t in images {
        let s = t.shape
        guard s.count == 3 || s.count == 4 else {
            throw SpaceError.shape(op: op, message: "image of shape \(shapeString(s)); expected (C, H, W) or (N, C, H, W)")
        }
        let (n, c, h, w) = s.count == 3 ? (1, s[0], s[1], s[2]) : (s[0], s[1], s[2], s[3])
        if height < 0 { (height, width) = (h, w) }
        guard h == height, w == width, c > 0 else {
            throw SpaceError.shape(op: op, message: "image of shape \(shapeString(s)) among images of size \(height)x\(width)")
        }
        if c != 1 {
            guard channels == 1 || channels == c else {
                throw SpaceError.shape(op: op, message: "image of shape \(shapeString(s)) among images of \(channels) channels")
            }
            channels = c
        }
        for i in 0..<n { tiles.append((t, i * c * h * w)) }
    }
    guard !tiles.isEmpty else { throw SpaceError.argument(op: op, message: "no images") }
    if channels == 1 { channels = 3 }   // all images are one-channel: the grid is RGB, as torchvision's

    func channelsOf(_ t: Tensor) -> Int { t.shape[t.rank - 3] }
    let plane = height * width
    if tiles.count == 1 {
        let (t, offset) = tiles[0]
        let out = Tensor.zeros([channels, height, width])
        for c in 0..<channels {
            let from = channelsOf(t) == 1 ? 0 : c
            (out.pointer + c * plane).update(from: t.pointer + offset + from * plane, count: plane)
        }
        return out
    }

    let gridColumns = min(columns, tiles.count)
    let gridRows = (tiles.count + gridColumns - 1) / gridColumns
    let cellHeight = height + padding, cellWidth = width + padding
    let outHeight = gridRows * cellHeight + padding, outWidth = gridColumns * cellWidth + padding
    let out = Tensor.full([channels, outHeight, outWidth], padValue)
    let dst = out.pointer
    for (k, (t, offset)) in tiles.enumerated() {
        let top = (k / gridColumns) * cellHeight + padding
        let left = (k % gridColumns) * cellWidth + padding
        for c in 0..<channels {
            let from = channelsOf(t) == 1 ? 0 : c
            let src = t.pointer + offset + from * plane
            for y in 0..<height {
                (dst + (c * outHeight + top + y) * outWidth + left).update(from: src + y * width, count: width)
            }
        }
    }
    return out
}
