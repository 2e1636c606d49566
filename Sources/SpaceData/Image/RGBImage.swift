/// An 8-bit image with interleaved channels, row-major: the pixel at (x, y) starts at
/// `(y * width + x) * channels`. Decoded pictures are RGB (`channels == 3`); the resampler also
/// accepts grey (1) and RGBA (4).
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public var pixels: [UInt8]

    /// `pixels.count` must equal `width * height * channels`.
    public init(width: Int, height: Int, channels: Int = 3, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && channels >= 1, "image of \(width)x\(height)x\(channels)")
        precondition(pixels.count == width * height * channels,
                     "\(pixels.count) bytes for a \(width)x\(height) image with \(channels) channels")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image filled with zeros.
    public init(width: Int, height: Int, channels: Int = 3) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [UInt8](repeating: 0, count: width * height * channels))
    }

    /// The channel values of the pixel at (x, y).
    public subscript(x: Int, y: Int) -> ArraySlice<UInt8> {
        let start = (y * width + x) * channels
        return pixels[start..<(start + channels)]
    }
}
