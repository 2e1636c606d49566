import SpaceCore

/// The order of the three colour planes in an image tensor.
public enum ChannelOrder: String, Sendable, CaseIterable {
    /// Red, green, blue (what PIL and torchvision produce).
    case rgb
    /// Blue, green, red: the channel order the authors' pretrained Atari models expect.
    case bgr
}

/// How a picture file becomes a model input: decode, resize, scale to [0, 1], lay out as CHW.
public struct ImagePreprocessing: Equatable, Sendable {
    /// Output side in pixels (SPACE uses 128).
    public var size: Int
    public var channelOrder: ChannelOrder
    /// The Pillow generation whose resize to reproduce.
    public var resizeOrder: PILResize.PassOrder

    public init(size: Int = 128, channelOrder: ChannelOrder = .rgb, resizeOrder: PILResize.PassOrder = .classic) {
        self.size = size
        self.channelOrder = channelOrder
        self.resizeOrder = resizeOrder
    }

    /// `x / 255` for every byte. The reference divides in Float64 then casts (Atari) or divides in
    /// Float32 (torchvision's ToTensor, OBJ3D); for 0...255 both give the same Float32 values.
    static let unitScale: [Float] = (0..<256).map { Float(Double($0) / 255.0) }

    /// Decodes the PNG at `path` and returns a (3, size, size) tensor.
    public func load(path: String) throws -> Tensor {
        tensor(from: try PNGCodec.decodeRGB(contentsOf: path))
    }

    /// Resizes (PIL bilinear, skipped when already size x size) and converts an RGB image.
    public func tensor(from image: RGBImage) -> Tensor {
        let resized = PILResize.bilinear(image, width: size, height: size, order: resizeOrder)
        return ImagePreprocessing.tensor(from: resized, channelOrder: channelOrder)
    }

    /// A (3, height, width) Float32 tensor in [0, 1] from an 8-bit RGB image, without resizing.
    public static func tensor(from image: RGBImage, channelOrder: ChannelOrder = .rgb) -> Tensor {
        precondition(image.channels == 3, "expected an RGB image, got \(image.channels) channels")
        let plane = image.width * image.height
        let t = Tensor.zeros([3, image.height, image.width])
        let dst = t.pointer
        image.pixels.withUnsafeBufferPointer { src in
            unitScale.withUnsafeBufferPointer { lut in
                for c in 0..<3 {
                    let from = channelOrder == .rgb ? c : 2 - c
                    let out = dst + c * plane
                    for i in 0..<plane { out[i] = lut[Int(src[3 * i + from])] }
                }
            }
        }
        return t
    }

    /// The inverse of `tensor(from:)`: a (3, H, W) tensor in [0, 1] back to 8-bit RGB (values are
    /// clamped and rounded), for writing pictures.
    public static func image(from tensor: Tensor, channelOrder: ChannelOrder = .rgb) throws -> RGBImage {
        guard tensor.rank == 3, tensor.shape[0] == 3 else {
            throw SpaceError.shape(op: "ImagePreprocessing.image", message: "expected (3, H, W), got \(shapeString(tensor.shape))")
        }
        let h = tensor.shape[1], w = tensor.shape[2], plane = h * w
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        let src = tensor.pointer
        for c in 0..<3 {
            let to = channelOrder == .rgb ? c : 2 - c
            for i in 0..<plane {
                let v = src[c * plane + i]
                let clamped = v.isNaN ? 0 : min(max(v, 0), 1)
                pixels[3 * i + to] = UInt8((clamped * 255).rounded())
            }
        }
        return RGBImage(width: w, height: h, channels: 3, pixels: pixels)
    }
}
