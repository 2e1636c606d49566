import Foundation
import XCTest
import SpaceCore
@testable import SpaceTrain

/// Training logs: checksums, TFRecord framing, Event encoding (against bytes from TensorBoard's own
/// protobuf classes), the event file writer and reader, PNG image summaries, the CSV log, makeGrid,
/// and, when TensorBoard is installed, TensorBoard's own reader on our files.
final class EventFileTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("EventFileTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: Checksums and framing

    func testChecksumsMatchKnownVectors() {
        let digits = Array("123456789".utf8)
        XCTAssertEqual(CRC32C.checksum(digits), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
        // RFC 3720 (iSCSI) appendix B.4.
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }), 0x113F_DB5C)
        XCTAssertEqual(CRC32C.update(CRC32C.checksum(digits[0..<4]), digits[4...]), 0xE306_9283)
        XCTAssertEqual(CRC32.checksum(digits), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum(Array("IEND".utf8)), 0xAE42_6082)
        XCTAssertEqual(Adler32.checksum(Array("Wikipedia".utf8)), 0x11E6_0398)
        XCTAssertEqual(Adler32.checksum([UInt8]()), 1)
        // Long enough to cross Adler-32's deferred-modulo blocks: compare with the plain definition.
        let long = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 255) }
        var a: UInt32 = 1, b: UInt32 = 0
        for x in long { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        XCTAssertEqual(Adler32.checksum(long), b << 16 | a)
    }

    func testMaskingAndFramingMatchTensorFlow() {
        XCTAssertEqual(CRC32C.mask(0), 0xA282_EAD8)
        for crc: UInt32 in [0, 1, 0xE306_9283, 0xFFFF_FFFF, 0x8000_0000] {
            XCTAssertEqual(CRC32C.unmask(CRC32C.mask(crc)), crc)
            XCTAssertEqual(CRC32C.mask(crc), ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8)
        }
        // From tensorboard's masked_crc32c (compat/tensorflow_stub): the record of "hello".
        XCTAssertEqual(TFRecord.frame(Array("hello".utf8)), bytes(hex: "0500000000000000eab2043e68656c6c6fbb1f1c19"))
        let records = try? TFRecord.records(in: TFRecord.frame([1, 2, 3]) + TFRecord.frame([]) + TFRecord.frame([9]))
        XCTAssertEqual(records?.map(Array.init), [[1, 2, 3], [], [9]])
    }

    func testEventEncodingMatchesTensorBoardProtobuf() throws {
        // Expected bytes from tensorboard.compat.proto.event_pb2.Event(...).SerializeToString().
        let version = SummaryEvent(wallTime: 1_712_345_678.25, fileVersion: "brain.Event:2")
        XCTAssertEqual(version.encoded(), bytes(hex: "09000090931484d9411a0d627261696e2e4576656e743a32"))

        let image = SummaryImage(height: 2, width: 3, colorspace: 3, encodedImage: [0x89, 0x50, 0x4E, 0x47])
        let summary = SummaryEvent(wallTime: 1.5, step: 300, values: [
            .scalar(tag: "loss", value: 0.5), .scalar(tag: "zero", value: 0), .image(tag: "img", image: image),
        ])
        let expected = "09000000000000f83f10ac022a2f0a0b0a046c6f7373150000003f0a0b0a047a65726f1500000000"
            + "0a130a03696d67220c080210031803220489504e47"
        XCTAssertEqual(summary.encoded(), bytes(hex: expected))
        XCTAssertEqual(try SummaryEvent(decoding: summary.encoded()[...]), summary)

        let negative = SummaryEvent(wallTime: 2, step: -1)
        XCTAssertEqual(negative.encoded(), bytes(hex: "09000000000000004010ffffffffffffffffff01"))
        XCTAssertEqual(try SummaryEvent(decoding: negative.encoded()[...]), negative)
    }

    // MARK: Event files

    func testWrittenFileReadsBack() throws {
        let logger = try TrainingLogger(logRoot: directory, experiment: "exp")
        try logger.scalar("loss", 1.5, step: 0)
        try logger.scalars(["loss": 0.75, "elbo": -1234.5, "beta/z_pres": 0.125], step: 10)
        let picture = try Tensor((0..<(3 * 4 * 5)).map { Float($0) / 59 }, shape: [3, 4, 5])
        try logger.image("train/grid", picture, step: 10)
        try logger.image("raw", rgb: [255, 0, 0, 0, 255, 0], width: 2, height: 1, step: 20)
        try logger.close()

        let logDirectory = (directory as NSString).appendingPathComponent("exp")
        let files = try EventFileReader.eventFiles(in: logDirectory)
        XCTAssertEqual(files.count, 1)
        let name = (files[0] as NSString).lastPathComponent
        XCTAssertTrue(name.hasPrefix("events.out.tfevents."), name)
        let stamp = name.dropFirst("events.out.tfevents.".count).prefix(11)
        XCTAssertTrue(stamp.prefix(10).allSatisfy(\.isNumber) && stamp.last == ".", name)
        XCTAssertEqual(String(name.dropFirst("events.out.tfevents.".count + 11)), hostName())

        let reader = try EventFileReader(path: files[0])
        XCTAssertEqual(reader.fileVersion, "brain.Event:2")
        XCTAssertEqual(reader.events.count, 5)
        XCTAssertEqual(reader.events.first?.values, [])
        let now = Date().timeIntervalSince1970
        XCTAssertTrue(reader.events.allSatisfy { abs($0.wallTime - now) < 600 })
        XCTAssertEqual(reader.scalars.map { "\($0.step) \($0.tag) \($0.value)" },
                       ["0 loss 1.5", "10 beta/z_pres 0.125", "10 elbo -1234.5", "10 loss 0.75"])

        let images = reader.images
        XCTAssertEqual(images.map(\.tag), ["train/grid", "raw"])
        XCTAssertEqual(images.map(\.step), [10, 20])
        XCTAssertEqual(images.map { [$0.width, $0.height, $0.colorspace] }, [[5, 4, 3], [2, 1, 3]])
        let decoded = try decodeStoredPNG(images[0].png)
        XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [5, 4, 3])
        XCTAssertEqual(decoded.pixels, try ImageSummary.rgbPixels(picture).pixels)
        XCTAssertEqual(try decodeStoredPNG(images[1].png).pixels, [255, 0, 0, 0, 255, 0])
    }

    func testTruncatedLastRecordIsDetected() throws {
        let writer = try EventFileWriter(directory: directory, wallTime: 1_700_000_000)
        try writer.addScalar("a", 1, step: 1)
        try writer.addScalar("a", 2, step: 2)
        try writer.close()
        let whole = [UInt8](try Data(contentsOf: URL(fileURLWithPath: writer.path)))
        XCTAssertEqual(try EventFileReader(bytes: whole).scalars.map(\.value), [1, 2])

        let lastRecord = TFRecord.frame(SummaryEvent(wallTime: 1, step: 2, values: [.scalar(tag: "a", value: 2)]).encoded()).count
        let start = whole.count - lastRecord
        let sections = [(1, "length"), (10, "length checksum"), (13, "data"), (lastRecord - 2, "data checksum")]
        for (kept, section) in sections {
            XCTAssertThrowsError(try EventFileReader(bytes: Array(whole.prefix(start + kept)))) { error in
                XCTAssertEqual(error as? EventFileError, .truncatedRecord(path: "<memory>", offset: start, section: section))
            }
        }
        var corrupt = whole
        corrupt[start + 3] ^= 1   // a length byte
        XCTAssertThrowsError(try EventFileReader(bytes: corrupt)) { error in
            XCTAssertEqual(error as? EventFileError, .lengthChecksumMismatch(path: "<memory>", offset: start))
        }
        corrupt = whole
        corrupt[whole.count - 6] ^= 0x40   // inside the last record's data
        XCTAssertThrowsError(try EventFileReader(bytes: corrupt)) { error in
            XCTAssertEqual(error as? EventFileError, .dataChecksumMismatch(path: "<memory>", offset: start))
        }
        // A well-framed record that is not an Event message.
        XCTAssertThrowsError(try EventFileReader(bytes: whole + TFRecord.frame([0x0A, 0x05]))) { error in
            guard case .malformedEvent(_, let offset, _) = error as? EventFileError else { return XCTFail("\(error)") }
            XCTAssertEqual(offset, whole.count)
        }
    }

    func testWritersStartedInTheSameSecondGetDistinctFiles() throws {
        let first = try EventFileWriter(directory: directory, wallTime: 1_700_000_000.9)
        let second = try EventFileWriter(directory: directory, wallTime: 1_700_000_000.1)
        XCTAssertTrue(first.path.hasSuffix("events.out.tfevents.1700000000." + hostName()))
        XCTAssertEqual(second.path, first.path + ".1")
        try first.close()
        try second.close()
        try first.close()   // closing twice is allowed
        XCTAssertThrowsError(try first.addScalar("a", 1, step: 0))
        XCTAssertEqual(try EventFileReader.eventFiles(in: directory), [first.path, second.path])
    }

    // MARK: Images

    func testPNGIsWellFormed() throws {
        // Wider than one stored deflate block (65535 bytes): 200 x 120 RGB = 72120 bytes + 120 filter bytes.
        let (width, height) = (200, 120)
        let pixels = (0..<(width * height * 3)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 / 600) }
        let png = try UncompressedPNG.encode(pixels: pixels, width: width, height: height)
        let decoded = try decodeStoredPNG(png)
        XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [width, height, 3])
        XCTAssertEqual(decoded.pixels, pixels)
        XCTAssertEqual(decoded.storedBlocks, 2)

        let gray = try decodeStoredPNG(try UncompressedPNG.encode(pixels: [0, 128, 255], width: 3, height: 1, channels: 1))
        XCTAssertEqual([gray.channels], [1])
        XCTAssertEqual(gray.pixels, [0, 128, 255])
        XCTAssertThrowsError(try UncompressedPNG.encode(pixels: [1, 2], width: 1, height: 1))
        XCTAssertThrowsError(try UncompressedPNG.encode(pixels: [], width: 0, height: 0))
    }

    func testImageTensorLayoutsAndRounding() throws {
        // (3, 1, 2) CHW and the same image as (1, 2, 3) HWC.
        let chw = try Tensor([0, 1, 0.5, 0.2, -3, 7], shape: [3, 1, 2])
        let hwc = try Tensor([0, 0.5, -3, 1, 0.2, 7], shape: [1, 2, 3])
        let expected: [UInt8] = [0, 128, 0, 255, 51, 255]   // 255 x + 0.5, clamped, truncated
        XCTAssertEqual(try ImageSummary.rgbPixels(chw).pixels, expected)
        XCTAssertEqual(try ImageSummary.rgbPixels(hwc).pixels, expected)
        XCTAssertEqual(try ImageSummary.rgbPixels(chw.reshape([1, 3, 1, 2])).pixels, expected)
        let gray = try ImageSummary.rgbPixels(try Tensor([0.0, .nan, 1], shape: [1, 3]))
        XCTAssertEqual([gray.width, gray.height], [3, 1])
        XCTAssertEqual(gray.pixels, [0, 0, 0, 0, 0, 0, 255, 255, 255])
        XCTAssertThrowsError(try ImageSummary.rgbPixels(Tensor.zeros([2, 4, 4])))
        let summary = try ImageSummary.png(chw)
        XCTAssertEqual([summary.width, summary.height, summary.colorspace], [2, 1, 3])
    }

    func testMakeGridLayout() throws {
        // Five 1x2 RGB images; image k, channel c holds 10 k + c + 1 (never the pad value 0).
        let batch = try Tensor((0..<4).flatMap { k in (0..<3).flatMap { c in [Float](repeating: Float(10 * k + c + 1), count: 2) } },
                               shape: [4, 3, 1, 2])
        let extra = Tensor.full([3, 1, 2], 41)
        for c in 0..<3 { extra.pointer[c * 2] = Float(41 + c); extra.pointer[c * 2 + 1] = Float(41 + c) }
        let grid = try makeGrid(images: [batch, extra], columns: 2, padding: 1)
        // rows = 3, columns = 2: H' = 3 (1 + 1) + 1 = 7, W' = 2 (2 + 1) + 1 = 7.
        XCTAssertEqual(grid.shape, [3, 7, 7])
        for c in 0..<3 {
            var expected = [[Float]](repeating: [Float](repeating: 0, count: 7), count: 7)
            for k in 0..<5 {
                let (row, column) = (k / 2, k % 2)
                for x in 0..<2 { expected[row * 2 + 1][column * 3 + 1 + x] = Float(10 * k + c + 1) }
            }
            let plane = (0..<7).map { y in (0..<7).map { x in grid.pointer[c * 49 + y * 7 + x] } }
            XCTAssertEqual(plane, expected, "channel \(c)")
        }

        // torchvision's defaults: 8 columns, padding 2; fewer images than columns make one short row.
        let defaults = try makeGrid(images: [batch])
        XCTAssertEqual(defaults.shape, [3, 1 + 2 + 2, 4 * (2 + 2) + 2])
        XCTAssertEqual(try makeGrid(images: [batch], padding: 0, padValue: 9).array.contains(9), false)
        let padded = try makeGrid(images: [batch], columns: 1, padding: 2, padValue: 0.5)  // kept alive while read
        XCTAssertEqual(padded.pointer[0], 0.5)

        // One image comes back as it is; one-channel images become RGB.
        XCTAssertEqual(try makeGrid(images: [extra]).array, extra.array)
        let mono = try makeGrid(images: [Tensor.full([1, 1, 1], 0.25), Tensor.full([3, 1, 1], 0.75)], columns: 2, padding: 0)
        XCTAssertEqual(mono.shape, [3, 1, 2])
        XCTAssertEqual(mono.array, [0.25, 0.75, 0.25, 0.75, 0.25, 0.75])
        XCTAssertThrowsError(try makeGrid(images: []))
        XCTAssertThrowsError(try makeGrid(images: [extra, Tensor.zeros([3, 2, 2])]))
        XCTAssertThrowsError(try makeGrid(images: [extra, Tensor.zeros([4, 1, 2])]))
    }

    // MARK: CSV

    func testCSVLogIsLongFormatAndAppends() throws {
        let path = (directory as NSString).appendingPathComponent("run/scalars.csv")
        let csv = try CSVScalarLogger(path: path)
        try csv.log([("loss", 0.5), ("elbo", -12)], step: 3, wallTime: 1_700_000_000.25)
        try csv.log([("odd, \"tag\"", 1e-5)], step: 4, wallTime: 1_700_000_001)
        try csv.close()
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), #"""
            step,wall_time,tag,value
            3,1700000000.250000,loss,0.5
            3,1700000000.250000,elbo,-12.0
            4,1700000001.000000,"odd, ""tag""",1e-05

            """#)

        // A resumed run appends without a second header; a cut last line is ended first.
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("5,17000".utf8))
        handle.closeFile()
        let resumed = try CSVScalarLogger(path: path)
        try resumed.log([("loss", .nan), ("new_tag", .infinity)], step: 6, wallTime: 1_700_000_002)
        try resumed.close()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.suffix(4), ["5,17000", "6,1700000002.000000,loss,nan", "6,1700000002.000000,new_tag,inf", ""])
        XCTAssertEqual(lines.filter { $0 == "step,wall_time,tag,value" }.count, 1)

        let other = (directory as NSString).appendingPathComponent("other.csv")
        try "step,loss\n1,2\n".write(toFile: other, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CSVScalarLogger(path: other))
    }

    func testTrainingLoggerWritesTheSameScalarsToCSV() throws {
        let logger = try TrainingLogger(directory: directory)
        try logger.scalars(["b": 2, "a": 1], step: 7)
        try logger.flush()
        let text = try String(contentsOfFile: (directory as NSString).appendingPathComponent("scalars.csv"), encoding: .utf8)
        let rows = text.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        XCTAssertEqual(rows.map { [$0[0], $0[2], $0[3]] }, [["step", "tag", "value"], ["7", "a", "1.0"], ["7", "b", "2.0"]])
        // Flushed files are readable while the logger is still open.
        let events = try EventFileReader(path: try EventFileReader.eventFiles(in: directory)[0])
        XCTAssertEqual(events.scalars.map(\.tag), ["a", "b"])
        XCTAssertEqual(Double(rows[1][1])!, events.events[1].wallTime, accuracy: 1e-5)
        try logger.close()
    }

    // MARK: TensorBoard's own reader

    func testTensorBoardReadsTheFiles() throws {
        guard runCommand(["python3", "-c", "import tensorboard"]).status == 0 else {
            throw XCTSkip("python3 with tensorboard is not available (pip install tensorboard pillow)")
        }
        let hasPIL = runCommand(["python3", "-c", "import PIL"]).status == 0
        let logger = try TrainingLogger(directory: directory)
        for step in [0, 5, 10] {
            try logger.scalars(["loss": 1 / Double(step + 1), "zero": 0], step: step)
        }
        let picture = try Tensor((0..<(3 * 6 * 7)).map { Float($0 % 17) / 16 }, shape: [3, 6, 7])
        try logger.image("grid", picture, step: 10)
        try logger.close()

        let script = (directory as NSString).appendingPathComponent("read_events.py")
        try readEventsScript.write(toFile: script, atomically: true, encoding: .utf8)
        let result = runCommand(["python3", script, directory])
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], result.stdout)

        let expectedLoss: [[Double]] = [[0, 1], [5, Double(Float(1.0 / 6))], [10, Double(Float(1.0 / 11))]]
        for key in ["scalars", "plugin_scalars"] {
            let scalars = try XCTUnwrap(json[key] as? [String: [[Double]]], key)
            XCTAssertEqual(Set(scalars.keys), ["loss", "zero"], key)
            XCTAssertEqual(scalars["loss"]?.count, 3, key)
            for (got, want) in zip(scalars["loss"] ?? [], expectedLoss) {
                XCTAssertEqual(got[0], want[0], key)
                XCTAssertEqual(got[1], want[1], accuracy: 1e-7, key)
            }
            XCTAssertEqual(scalars["zero"]?.map { $0[1] }, [0, 0, 0], key)
        }
        XCTAssertEqual((json["plugin_images"] as? [String: [Int]])?["grid"], [10])
        let images = try XCTUnwrap((json["images"] as? [String: [[String: Any]]])?["grid"])
        XCTAssertEqual(images.count, 1)
        XCTAssertEqual(images.first?["step"] as? Int, 10)
        XCTAssertEqual(images.first?["width"] as? Int, 7)
        XCTAssertEqual(images.first?["height"] as? Int, 6)
        if hasPIL {
            let pil = try XCTUnwrap(images.first?["pil"] as? [String: Any], "Pillow did not decode the PNG")
            XCTAssertEqual(pil["mode"] as? String, "RGB")
            XCTAssertEqual(pil["size"] as? [Int], [7, 6])
            XCTAssertEqual((pil["pixels"] as? [Int])?.map(UInt8.init), try ImageSummary.rgbPixels(picture).pixels)
        }
    }
}

// MARK: - Helpers

private func bytes(hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}

private struct DecodedPNG {
    var width: Int, height: Int, channels: Int
    var pixels: [UInt8]
    var storedBlocks: Int
}

private struct PNGCheckError: Error, CustomStringConvertible {
    let description: String
}

/// Decodes a PNG written with stored deflate blocks and filter type 0, checking the signature, every
/// chunk's CRC32, the zlib header, each block's LEN/NLEN and the Adler-32.
private func decodeStoredPNG(_ png: [UInt8]) throws -> DecodedPNG {
    func fail(_ message: String) -> PNGCheckError { PNGCheckError(description: message) }
    func be32(_ at: Int) -> Int { png[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
    guard png.starts(with: UncompressedPNG.signature) else { throw fail("bad signature") }
    var offset = 8, chunks: [String] = [], idat: [UInt8] = [], header: [UInt8] = []
    while offset < png.count {
        guard offset + 12 <= png.count else { throw fail("chunk at \(offset) is cut") }
        let length = be32(offset)
        let type = String(decoding: png[offset + 4..<offset + 8], as: UTF8.self)
        guard offset + 12 + length <= png.count else { throw fail("\(type) is cut") }
        let body = Array(png[offset + 8..<offset + 8 + length])
        guard UInt32(be32(offset + 8 + length)) == CRC32.checksum(png[offset + 4..<offset + 8 + length]) else {
            throw fail("\(type) CRC mismatch")
        }
        chunks.append(type)
        if type == "IHDR" { header = body }
        if type == "IDAT" { idat += body }
        offset += 12 + length
    }
    guard chunks.first == "IHDR", chunks.last == "IEND", header.count == 13 else { throw fail("chunks \(chunks)") }
    let width = header[0..<4].reduce(0) { $0 << 8 | Int($1) }, height = header[4..<8].reduce(0) { $0 << 8 | Int($1) }
    let channelsOfType: [UInt8: Int] = [0: 1, 4: 2, 2: 3, 6: 4]
    guard header[8] == 8, let channels = channelsOfType[header[9]], header[10...] == [0, 0, 0] else { throw fail("IHDR \(header)") }

    guard idat.count >= 6, (Int(idat[0]) << 8 | Int(idat[1])) % 31 == 0, idat[0] & 0x0F == 8 else { throw fail("zlib header") }
    var position = 2, raw: [UInt8] = [], blocks = 0, final = false
    while !final {
        guard position + 5 <= idat.count, idat[position] & 0b110 == 0 else { throw fail("not a stored block at \(position)") }
        final = idat[position] & 1 == 1
        let len = Int(idat[position + 1]) | Int(idat[position + 2]) << 8
        let nlen = Int(idat[position + 3]) | Int(idat[position + 4]) << 8
        guard len == nlen ^ 0xFFFF, position + 5 + len <= idat.count else { throw fail("block LEN/NLEN") }
        raw += idat[position + 5..<position + 5 + len]
        position += 5 + len
        blocks += 1
    }
    guard position + 4 == idat.count, UInt32(idat[position..<position + 4].reduce(0) { $0 << 8 | Int($1) }) == Adler32.checksum(raw) else {
        throw fail("Adler-32")
    }
    let row = width * channels
    guard raw.count == height * (row + 1) else { throw fail("\(raw.count) bytes of scanlines") }
    var pixels: [UInt8] = []
    for y in 0..<height {
        guard raw[y * (row + 1)] == 0 else { throw fail("filter type of row \(y)") }
        pixels += raw[y * (row + 1) + 1..<(y + 1) * (row + 1)]
    }
    return DecodedPNG(width: width, height: height, channels: channels, pixels: pixels, storedBlocks: blocks)
}

/// Runs a command found on PATH; returns its exit status and output. Output goes through temporary
/// files, so a full pipe cannot block the child.
private func runCommand(_ arguments: [String]) -> (status: Int32, stdout: String, stderr: String) {
    let base = (NSTemporaryDirectory() as NSString).appendingPathComponent("EventFileTests-run-\(UUID().uuidString)")
    let outPath = base + ".out", errPath = base + ".err"
    defer {
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
    }
    guard FileManager.default.createFile(atPath: outPath, contents: nil),
          FileManager.default.createFile(atPath: errPath, contents: nil),
          let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath) else {
        return (-1, "", "cannot create \(base).out/.err")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.standardOutput = out
    process.standardError = err
    do { try process.run() } catch { return (-1, "", "\(error)") }
    process.waitUntilExit()
    try? out.close()
    try? err.close()
    let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    return (process.terminationStatus, read(outPath), read(errPath))
}

/// Reads a log directory with TensorBoard's readers and prints what they see as JSON. Kept here rather
/// than as a .py file beside the tests because SwiftPM warns about unhandled files in a test target.
///
/// Output: {"scalars": {tag: [[step, value], ...]}          (EventAccumulator, the legacy API)
///          "plugin_scalars": {tag: [[step, value], ...]}   (plugin_event_accumulator, as the app loads them)
///          "images": {tag: [{"step", "width", "height", "pil"}]}, "plugin_images": {tag: [step, ...]}}
/// With Pillow, "pil" holds the decoded PNG's mode, size and (up to 4096 pixels) its RGB values, after
/// Image.verify() has checked the chunk CRCs.
private let readEventsScript = #"""
import io
import json
import sys

from tensorboard.backend.event_processing import event_accumulator, plugin_event_accumulator
from tensorboard.util import tensor_util

try:
    from PIL import Image
except ImportError:
    Image = None


def decode_png(data):
    if Image is None:
        return None
    Image.open(io.BytesIO(data)).verify()
    im = Image.open(io.BytesIO(data))
    im.load()
    out = {"mode": im.mode, "size": list(im.size)}
    if im.size[0] * im.size[1] <= 4096:
        out["pixels"] = [v for px in im.convert("RGB").getdata() for v in px]
    return out


def main(logdir):
    everything = {event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0}
    acc = event_accumulator.EventAccumulator(logdir, size_guidance=everything)
    acc.Reload()
    tags = acc.Tags()
    result = {"scalars": {}, "images": {}, "plugin_scalars": {}, "plugin_images": {}}
    for tag in tags["scalars"]:
        result["scalars"][tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
    for tag in tags["images"]:
        result["images"][tag] = [
            {"step": e.step, "width": e.width, "height": e.height, "pil": decode_png(e.encoded_image_string)}
            for e in acc.Images(tag)
        ]

    plugin = plugin_event_accumulator.EventAccumulator(logdir, size_guidance={plugin_event_accumulator.TENSORS: 0})
    plugin.Reload()
    for tag in plugin.PluginTagToContent("scalars"):
        result["plugin_scalars"][tag] = [
            [e.step, float(tensor_util.make_ndarray(e.tensor_proto))] for e in plugin.Tensors(tag)
        ]
    for tag in plugin.PluginTagToContent("images"):
        result["plugin_images"][tag] = [e.step for e in plugin.Tensors(tag)]
    json.dump(result, sys.stdout)


main(sys.argv[1])
"""#
