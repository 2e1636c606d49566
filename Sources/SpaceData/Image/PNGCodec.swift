import CPNG
import Foundation
import SpaceCore

/// PNG reading and writing through libpng's simplified API.
///
/// The simplified API (`png_image_*`) reports failures through return codes and a message buffer,
/// so libpng's `longjmp` error handling never crosses Swift frames. A whole file is read into memory
/// first and decoded from there.
///
/// Decoding reproduces PIL's `Image.open(path).convert('RGB')`:
/// - every colour type and bit depth becomes 8-bit RGB; 1/2/4-bit grey is scaled to 0...255 and
///   palette images are looked up (a `tRNS` chunk does not change the colours);
/// - alpha is discarded, not composited;
/// - colour-management chunks are ignored (see `PNGChunks`);
/// - 16-bit RGB, RGBA and grey+alpha keep the high byte of each sample, as PIL's `;16B` unpackers do;
///   16-bit grey opens in PIL as mode `I;16`, whose conversion to RGB clips at 255, so values above 255
///   become 255. One approximation remains: for 16-bit RGBA libpng hands back colour premultiplied by
///   alpha, which is undone here; translucent pixels can therefore be off by one level and fully
///   transparent pixels come out black (PIL would keep the hidden colour). Opaque pixels are exact.
public enum PNGCodec {
    private static let flagAlpha: UInt32 = 0x01   // PNG_FORMAT_FLAG_ALPHA
    private static let flagColor: UInt32 = 0x02   // PNG_FORMAT_FLAG_COLOR
    private static let flagLinear: UInt32 = 0x04  // PNG_FORMAT_FLAG_LINEAR

    /// Reads the IHDR of a PNG file.
    public static func header(contentsOf path: String) throws -> PNGHeader {
        try PNGChunks.prepare(readFile(path), path: path).header
    }

    /// Decodes a PNG file to 8-bit RGB. Throws `SpaceError.file` naming `path` when the file cannot be
    /// read, is not a PNG, is truncated or is corrupt.
    public static func decodeRGB(contentsOf path: String) throws -> RGBImage {
        try decodeRGB(readFile(path), path: path)
    }

    /// Decodes PNG bytes to 8-bit RGB; `path` only names the source in errors.
    public static func decodeRGB(_ bytes: [UInt8], path: String = "<memory>") throws -> RGBImage {
        let (header, data) = try PNGChunks.prepare(
            bytes, path: path,
            rewrite: { $0.bitDepth == 16 && $0.colorType == 4 ? .greyAlpha16AsRGBA8 : .none },
            // 16-bit grey and RGB are read without alpha; a tRNS chunk would make libpng composite.
            keepTransparency: { !($0.bitDepth == 16 && ($0.colorType == 0 || $0.colorType == 2)) })
        let n = header.width * header.height
        var rgb = [UInt8](repeating: 0, count: n * 3)

        switch (header.bitDepth, header.colorType) {
        case (16, 0):
            let grey = try read16(data, format: flagLinear, channels: 1, header: header, path: path)
            for i in 0..<n {
                let v = UInt8(min(grey[i], 255))
                rgb[3 * i] = v; rgb[3 * i + 1] = v; rgb[3 * i + 2] = v
            }
        case (16, 2):
            let c = try read16(data, format: flagLinear | flagColor, channels: 3, header: header, path: path)
            for i in 0..<(3 * n) { rgb[i] = UInt8(c[i] >> 8) }
        case (16, 6):
            let c = try read16(data, format: flagLinear | flagColor | flagAlpha, channels: 4, header: header, path: path)
            for i in 0..<n {
                let a = UInt32(c[4 * i + 3])
                for k in 0..<3 {
                    let p = UInt32(c[4 * i + k])
                    let straight = a == 0 ? 0 : min(65535, (p * 65535 + a / 2) / a)
                    rgb[3 * i + k] = UInt8(straight >> 8)
                }
            }
        case (16, 4):
            // Rewritten as 8-bit RGBA: bytes are (grey high, grey low, alpha high, alpha low).
            let raw = try read8(data, format: flagColor | flagAlpha, channels: 4, header: header, path: path)
            for i in 0..<n {
                let v = raw[4 * i]
                rgb[3 * i] = v; rgb[3 * i + 1] = v; rgb[3 * i + 2] = v
            }
        default:
            // Every 1/2/4/8-bit type: libpng expands to 8-bit RGBA (alpha 255 where the file has none).
            let rgba = try read8(data, format: flagColor | flagAlpha, channels: 4, header: header, path: path)
            for i in 0..<n {
                rgb[3 * i] = rgba[4 * i]; rgb[3 * i + 1] = rgba[4 * i + 1]; rgb[3 * i + 2] = rgba[4 * i + 2]
            }
        }
        return RGBImage(width: header.width, height: header.height, channels: 3, pixels: rgb)
    }

    /// Encodes an 8-bit RGB (3 channels) or RGBA (4 channels) image as PNG bytes.
    ///
    /// `fast` trades file size for speed (libpng's PNG_IMAGE_FLAG_FAST: cheaper filtering and
    /// compression); the pixels are the same either way.
    public static func encode(_ image: RGBImage, fast: Bool = false) throws -> [UInt8] {
        guard image.channels == 3 || image.channels == 4 else {
            throw SpaceError.argument(op: "PNGCodec.encode", message: "\(image.channels) channels; only RGB (3) and RGBA (4) are written")
        }
        guard image.width > 0, image.height > 0 else {
            throw SpaceError.argument(op: "PNGCodec.encode", message: "empty image \(image.width)x\(image.height)")
        }
        var png = png_image()
        png.version = png_uint_32(PNG_IMAGE_VERSION)
        png.width = png_uint_32(image.width)
        png.height = png_uint_32(image.height)
        png.format = image.channels == 4 ? flagColor | flagAlpha : flagColor
        if fast { png.flags = 0x02 }   // PNG_IMAGE_FLAG_FAST
        // An upper bound on the stream (libpng's PNG_IMAGE_PNG_SIZE_MAX): stored data plus headers.
        let raw = (image.width * image.channels + 1) * image.height
        var capacity = raw + (raw + 7) / 8 + (raw + 63) / 64 + 11 + 12 * (raw / 8192 + 1) + 1024
        for _ in 0..<2 {
            var out = [UInt8](repeating: 0, count: capacity)
            var size = png_alloc_size_t(capacity)
            let ok = out.withUnsafeMutableBytes { dst in
                image.pixels.withUnsafeBytes { src in
                    png_image_write_to_memory(&png, dst.baseAddress, &size, 0, src.baseAddress, 0, nil)
                }
            }
            if ok != 0 { return Array(out[0..<Int(size)]) }
            guard Int(size) > capacity else { break }
            capacity = Int(size)
        }
        throw SpaceError.message("PNGCodec.encode: libpng failed: \(message(of: &png))")
    }

    /// Writes `image` as a PNG file atomically (a temporary file in the same folder, then a rename).
    public static func write(_ image: RGBImage, to path: String, fast: Bool = false) throws {
        try writeFileAtomically(encode(image, fast: fast), to: path)
    }

    // MARK: - libpng calls

    private static func read8(_ data: [UInt8], format: UInt32, channels: Int, header: PNGHeader, path: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: header.width * header.height * channels)
        try out.withUnsafeMutableBytes { try finishRead(data, format: format, into: $0, header: header, path: path) }
        return out
    }

    private static func read16(_ data: [UInt8], format: UInt32, channels: Int, header: PNGHeader, path: String) throws -> [UInt16] {
        var out = [UInt16](repeating: 0, count: header.width * header.height * channels)
        try out.withUnsafeMutableBytes { try finishRead(data, format: format, into: $0, header: header, path: path) }
        return out
    }

    /// Runs begin_read / finish_read on `data` with output `format` into `buffer` (native byte order).
    private static func finishRead(_ data: [UInt8], format: UInt32, into buffer: UnsafeMutableRawBufferPointer,
                                   header: PNGHeader, path: String) throws {
        var png = png_image()
        png.version = png_uint_32(PNG_IMAGE_VERSION)
        let failure: String? = data.withUnsafeBytes { src -> String? in
            guard png_image_begin_read_from_memory(&png, src.baseAddress, src.count) != 0 else {
                let m = message(of: &png)
                png_image_free(&png)
                return m
            }
            guard Int(png.width) == header.width, Int(png.height) == header.height else {
                png_image_free(&png)
                return "libpng reports \(png.width)x\(png.height), IHDR says \(header.width)x\(header.height)"
            }
            png.format = format
            // finish_read frees the libpng state whether it succeeds or not.
            guard png_image_finish_read(&png, nil, buffer.baseAddress, 0, nil) != 0 else { return message(of: &png) }
            return nil
        }
        if let failure { throw SpaceError.file(path: path, message: "cannot decode PNG: \(failure)") }
    }

    private static func message(of png: inout png_image) -> String {
        let text = withUnsafeBytes(of: &png.message) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        return text.isEmpty ? "unknown libpng error" : text
    }
}

/// Reads a whole file, throwing `SpaceError.file` naming `path` on failure.
func readFile(_ path: String) throws -> [UInt8] {
    guard let handle = FileHandle(forReadingAtPath: path) else {
        let reason = FileManager.default.fileExists(atPath: path) ? "cannot open file for reading" : "no such file"
        throw SpaceError.file(path: path, message: reason)
    }
    defer { try? handle.close() }
    do {
        return [UInt8](try handle.readToEnd() ?? Data())
    } catch {
        throw SpaceError.file(path: path, message: "read failed: \(error.localizedDescription)")
    }
}

/// Writes `bytes` to `path` through a uniquely named temporary file in the same folder and a rename,
/// so a reader never sees a partly written file.
func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let dir = url.deletingLastPathComponent().path
    let temp = dir + "/.\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    guard fd >= 0 else {
        throw SpaceError.file(path: path, message: "cannot create temporary file \(temp): \(String(cString: strerror(errno)))")
    }
    var written = 0
    var failure: String?
    bytes.withUnsafeBytes { raw in
        while written < raw.count {
            let n = Foundation.write(fd, raw.baseAddress! + written, raw.count - written)
            if n < 0 {
                if errno == EINTR { continue }
                failure = String(cString: strerror(errno))
                return
            }
            written += n
        }
    }
    if close(fd) != 0 && failure == nil { failure = String(cString: strerror(errno)) }
    if let failure {
        unlink(temp)
        throw SpaceError.file(path: path, message: "cannot write temporary file \(temp): \(failure)")
    }
    guard rename(temp, path) == 0 else {
        let reason = String(cString: strerror(errno))
        unlink(temp)
        throw SpaceError.file(path: path, message: "cannot move \(temp) into place: \(reason)")
    }
}
