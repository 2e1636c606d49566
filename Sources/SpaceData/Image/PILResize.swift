import Foundation

/// PIL's `Image.resize(size, Image.BILINEAR)` (Pillow >= 7) for 8-bit images, bit for bit.
///
/// PIL resamples separably with a triangle filter whose support grows with the downscale factor
/// (so shrinking averages, i.e. it is antialiased): first horizontally into an 8-bit intermediate
/// that only holds the rows the vertical pass uses, then vertically. The filter weights are computed
/// in Double, normalised to sum 1 per output pixel, then converted to fixed point with 22 fraction
/// bits (`PRECISION_BITS = 32 - 8 - 2`); each output is the integer sum plus one half, shifted down
/// and clipped to 0...255. A pass whose size does not change is skipped; equal sizes copy the image.
/// Pillow 13 changed which pass goes first for images that shrink much more in height (see
/// `PassOrder`); the default is the order of the Pillow the reference pins.
public enum PILResize {
    static let precisionBits = 22

    /// Fixed-point filter taps for one axis: output `i` reads `count[i]` inputs from `start[i]`.
    struct Taps {
        var start: [Int]
        var count: [Int]
        /// `kernelSize` weights per output, fixed point with `precisionBits` fraction bits.
        var weights: [Int32]
        var kernelSize: Int
    }

    /// Triangle-filter taps mapping `inSize` samples to `outSize` (PIL's precompute_coeffs plus
    /// normalize_coeffs_8bpc, for the box covering the whole input).
    static func taps(inSize: Int, outSize: Int) -> Taps {
        let scale = Double(Float(inSize)) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 1.0 * filterScale            // the bilinear filter's support is 1
        let kernelSize = Int(support.rounded(.up)) * 2 + 1
        var starts = [Int](repeating: 0, count: outSize)
        var counts = [Int](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * kernelSize)
        var k = [Double](repeating: 0, count: kernelSize)
        let inverse = 1.0 / filterScale
        for o in 0..<outSize {
            let center = 0.0 + (Double(o) + 0.5) * scale
            var lo = Int(center - support + 0.5)     // C's (int) cast truncates toward zero
            if lo < 0 { lo = 0 }
            var hi = Int(center + support + 0.5)
            if hi > inSize { hi = inSize }
            let n = hi - lo
            var total = 0.0
            for x in 0..<n {
                var t = (Double(x + lo) - center + 0.5) * inverse
                if t < 0 { t = -t }
                let w = t < 1.0 ? 1.0 - t : 0.0
                k[x] = w
                total += w
            }
            for x in 0..<n {
                let w = total != 0 ? k[x] / total : k[x]
                let fixed = w * Double(1 << precisionBits)
                weights[o * kernelSize + x] = Int32(w < 0 ? -0.5 + fixed : 0.5 + fixed)
            }
            starts[o] = lo
            counts[o] = n
        }
        return Taps(start: starts, count: counts, weights: weights, kernelSize: kernelSize)
    }

    @inline(__always) static func clip8(_ accumulated: Int32) -> UInt8 {
        let v = accumulated >> Int32(precisionBits)
        return v < 0 ? 0 : (v > 255 ? 255 : UInt8(v))
    }

    /// Which pass runs first when both axes change.
    public enum PassOrder: String, Sendable, CaseIterable {
        /// Horizontal, then vertical: every Pillow from 4.x to 12.x, including the 6.2.1 the
        /// reference's requirements pin (the data the authors' models were trained on).
        case classic
        /// Pillow 13 (python-pillow/Pillow#9549): vertical first when the height shrinks by more than
        /// twice as many pixels as the width (`inH > outH` and `inH - outH > 2 * (inW - outW)`),
        /// e.g. 160 x 210 Atari frames to 128 x 128. Results differ by at most one level in places.
        case pillow13
    }

    /// `image` resampled to `width` x `height` as PIL's bilinear resize does (any channel count).
    public static func bilinear(_ image: RGBImage, width: Int, height: Int, order: PassOrder = .classic) -> RGBImage {
        precondition(width > 0 && height > 0, "resize to \(width)x\(height)")
        if image.width == width && image.height == height { return image }
        let c = image.channels
        let needHorizontal = width != image.width, needVertical = height != image.height
        let horizontal = taps(inSize: image.width, outSize: width)
        var vertical = taps(inSize: image.height, outSize: height)

        let verticalFirst = order == .pillow13 && needHorizontal && needVertical
            && image.height > height && image.height - height > 2 * (image.width - width)
        if verticalFirst {
            let tall = verticalPass(image.pixels, stride: image.width * c, taps: vertical, rows: height)
            let out = horizontalPass(tall, inWidth: image.width, channels: c, firstRow: 0, rows: height, taps: horizontal, outWidth: width)
            return RGBImage(width: width, height: height, channels: c, pixels: out)
        }

        var source = image.pixels
        var sourceWidth = image.width
        if needHorizontal {
            // Only rows the vertical pass reads are resampled horizontally.
            let first = needVertical ? vertical.start[0] : 0
            let last = needVertical ? vertical.start[height - 1] + vertical.count[height - 1] : image.height
            if needVertical { for i in 0..<height { vertical.start[i] -= first } }
            source = horizontalPass(image.pixels, inWidth: image.width, channels: c, firstRow: first, rows: last - first,
                                    taps: horizontal, outWidth: width)
            sourceWidth = width
        }
        if needVertical { source = verticalPass(source, stride: sourceWidth * c, taps: vertical, rows: height) }
        return RGBImage(width: width, height: height, channels: c, pixels: source)
    }

    /// Resamples rows `firstRow ..< firstRow + rows` of an interleaved image to `outWidth` columns.
    static func horizontalPass(_ pixels: [UInt8], inWidth: Int, channels c: Int, firstRow: Int, rows: Int,
                               taps: Taps, outWidth: Int) -> [UInt8] {
        let half = Int32(1) << Int32(precisionBits - 1)
        var out = [UInt8](repeating: 0, count: rows * outWidth * c)
        pixels.withUnsafeBufferPointer { src in
            taps.weights.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { dst in
                    for y in 0..<rows {
                        let row = (y + firstRow) * inWidth * c
                        for x in 0..<outWidth {
                            let lo = taps.start[x], n = taps.count[x]
                            let kBase = x * taps.kernelSize
                            for ch in 0..<c {
                                var acc = half
                                for t in 0..<n { acc &+= Int32(src[row + (lo + t) * c + ch]) &* w[kBase + t] }
                                dst[(y * outWidth + x) * c + ch] = clip8(acc)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Resamples the columns of an image whose rows are `stride` bytes long to `rows` rows.
    static func verticalPass(_ pixels: [UInt8], stride: Int, taps: Taps, rows: Int) -> [UInt8] {
        let half = Int32(1) << Int32(precisionBits - 1)
        var out = [UInt8](repeating: 0, count: rows * stride)
        pixels.withUnsafeBufferPointer { src in
            taps.weights.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { dst in
                    for y in 0..<rows {
                        let lo = taps.start[y], n = taps.count[y]
                        let kBase = y * taps.kernelSize
                        for i in 0..<stride {
                            var acc = half
                            for t in 0..<n { acc &+= Int32(src[(lo + t) * stride + i]) &* w[kBase + t] }
                            dst[y * stride + i] = clip8(acc)
                        }
                    }
                }
            }
        }
        return out
    }
}
