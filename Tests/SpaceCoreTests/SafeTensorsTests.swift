import XCTest
@testable import SpaceCore

final class SafeTensorsTests: XCTestCase {
    private let weightsPath = FixturePaths.parity("atari_si_b2_s100")! + "/weights.safetensors"
    private let expectedPath = FixturePaths.parity("atari_si_b2_s100")! + "/expected.safetensors"
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func temporaryPath(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// A file from a header string and data bytes (the header is written verbatim, no padding).
    private func craft(_ name: String, header: String, data: [UInt8], headerLength: UInt64? = nil) throws -> String {
        var bytes: [UInt8] = []
        let h = Array(header.utf8)
        withUnsafeBytes(of: (headerLength ?? UInt64(h.count)).littleEndian) { bytes += $0 }
        bytes += h + data
        let path = temporaryPath(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Asserts that loading `path` throws `SpaceError.file` for that path with `fragment` in the message.
    private func assertFileError(_ path: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensors.load(path: path), file: file, line: line) { error in
            guard case SpaceError.file(let p, let message) = error else { return XCTFail("not a file error: \(error)", file: file, line: line) }
            XCTAssertEqual(p, path, file: file, line: line)
            XCTAssertTrue(message.contains(fragment), "'\(message)' lacks '\(fragment)'", file: file, line: line)
            XCTAssertTrue(String(describing: error).contains(path), file: file, line: line)
        }
    }

    private func floatBytes(_ values: [Float]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } } }

    // MARK: Real files

    func testReadsReferenceWeights() throws {
        let start = Date()
        let file = try SafeTensors.load(path: weightsPath)
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertLessThan(elapsed, 2.0, "loading 21 MB took \(elapsed) s")
        XCTAssertEqual(file.values.count, 285)
        XCTAssertEqual(file.values.values.filter { $0.dtype == "I64" }.count, 12)
        XCTAssertTrue(file.metadata.isEmpty)
        XCTAssertEqual(file["bg_module.comp_decoder.decoder.0.weight"]?.shape, [32, 34, 3, 3])
        let w = try file.tensor("bg_module.rnn_mask.weight_ih")
        XCTAssertEqual(w.shape, [256, 96])
        XCTAssertEqual(Array(w.array.prefix(3)), [-0.12281021475791931, -0.10362806916236877, 0.07053676247596741])
        XCTAssertEqual(w.array.last, -0.04506196081638336)
        XCTAssertFalse(w.requiresGrad)
        let counter = try file.int64("bg_module.image_enc.enc.1.num_batches_tracked")
        XCTAssertEqual(counter.shape, [])
        XCTAssertEqual(counter.values, [0])
        XCTAssertEqual(try file.tensor("fg_module.prior_z_pres_prob").shape, [])
        XCTAssertEqual(try file.tensor("fg_module.prior_z_pres_prob").item(), 0.1)

        // A BatchNorm layer of the reference loads from it, counter included.
        let bn = BatchNorm2d(channels: 64)
        let prefix = "bg_module.image_enc.enc.1."
        var state: [String: StateValue] = [:]
        for key in file.keys where key.hasPrefix(prefix) { state[String(key.dropFirst(prefix.count))] = file[key] }
        bn.numBatchesTracked.values = [5]
        try bn.loadStateDict(state)
        XCTAssertEqual(bn.numBatchesTracked.values, [0])
    }

    func testReadsExpectedFixture() throws {
        let file = try SafeTensors.load(path: expectedPath)
        XCTAssertEqual(try file.tensor("input").shape, [2, 3, 128, 128])
        XCTAssertEqual(try file.tensor("out.loss").array, [110618.5])
        XCTAssertEqual(try file.tensor("noise.fg.z_pres").shape, [2, 256, 1])
        XCTAssertEqual(Array(try file.int64("grad_idx.bg_module.rnn_mask.bias_ih").values.prefix(5)), [88, 120, 153, 86, 240])
    }

    func testAccessorErrorsNameTheFile() throws {
        let file = try SafeTensors.load(path: weightsPath)
        XCTAssertThrowsError(try file.tensor("nope")) { error in
            XCTAssertEqual(error as? SpaceError, .file(path: weightsPath, message: "no tensor named 'nope' (the file has 285)"))
        }
        XCTAssertThrowsError(try file.tensor("bg_module.image_enc.enc.1.num_batches_tracked"))
        XCTAssertThrowsError(try file.int64("bg_module.rnn_mask.weight_ih"))
    }

    // MARK: Writing

    func testRoundTripOfReferenceWeightsIsExact() throws {
        let original = try SafeTensors.load(path: weightsPath)
        let path = temporaryPath("copy.safetensors")
        try SafeTensors.save(original.values, metadata: ["format": "pt", "note": "quote \" backslash \\ newline \n"], to: path)
        let copy = try SafeTensors.load(path: path)
        XCTAssertEqual(copy.keys, original.keys)
        XCTAssertEqual(copy.metadata, ["format": "pt", "note": "quote \" backslash \\ newline \n"])
        for key in original.keys {
            switch (original[key]!, copy[key]!) {
            case (.float(let a), .float(let b)):
                XCTAssertEqual(a.shape, b.shape, key)
                XCTAssertEqual(memcmp(a.pointer, b.pointer, 4 * a.count), 0, "bits differ in \(key)")
            case (.int64(let a), .int64(let b)):
                XCTAssertEqual(a.shape, b.shape, key)
                XCTAssertEqual(a.values, b.values, key)
            default: XCTFail("dtype changed for \(key)")
            }
        }
        // Atomic write: nothing but the destination is left in the directory.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["copy.safetensors"])
        // The data starts 8-byte aligned (header padded with spaces).
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual((8 + n) % 8, 0)
    }

    func testModuleStateRoundTrip() throws {
        let bn = BatchNorm2d(channels: 3)
        bn.numBatchesTracked.values = [1234567890123]
        bn.runningMean.pointer[1] = -2.5
        let path = temporaryPath("bn.safetensors")
        try SafeTensors.save(bn.stateDict(), to: path)
        let other = BatchNorm2d(channels: 3)
        try other.loadStateDict(SafeTensors.load(path: path).values)
        XCTAssertEqual(other.numBatchesTracked.values, [1234567890123])
        XCTAssertEqual(other.runningMean.array, [0, -2.5, 0])
    }

    func testOverwriteAndOddNames() throws {
        let path = temporaryPath("odd.safetensors")
        try SafeTensors.save(["a": Tensor.ones([2])], to: path)
        let names = ["with \"quotes\"", "tab\tand\u{1}control", "unicode é ∑ 🙂", "", "empty"]
        var values: [String: Tensor] = [:]
        for (i, name) in names.enumerated() { values[name] = Tensor.full(i == 4 ? [0, 3] : [i + 1], Float(i)) }
        try SafeTensors.save(values, to: path)
        let file = try SafeTensors.load(path: path)
        XCTAssertEqual(file.keys, names.sorted())
        XCTAssertEqual(try file.tensor("unicode é ∑ 🙂").array, [2, 2, 2])
        XCTAssertEqual(try file.tensor("empty").shape, [0, 3])
        XCTAssertThrowsError(try SafeTensors.save(["__metadata__": Tensor.ones([1])], to: temporaryPath("bad.safetensors")))
        XCTAssertThrowsError(try SafeTensors.save(["a": Tensor.ones([1])], to: temporaryPath("missing-dir/x.safetensors"))) { error in
            guard case SpaceError.file(let p, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(p, self.temporaryPath("missing-dir/x.safetensors"))
        }
    }

    // MARK: Other dtypes

    func testReadsOtherDtypes() throws {
        let header = #"{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},"#
            + #""d":{"dtype":"F64","shape":[1],"data_offsets":[12,20]},"i":{"dtype":"I32","shape":[2],"data_offsets":[20,28]},"#
            + #""u":{"dtype":"U8","shape":[2],"data_offsets":[28,30]},"__metadata__":{"k":"v"}}"#
        var data: [UInt8] = []
        // F16: 1.0, -2.5, 2^-24 (smallest subnormal), +inf.
        for h: UInt16 in [0x3C00, 0xC100, 0x0001, 0x7C00] { withUnsafeBytes(of: h.littleEndian) { data += $0 } }
        // BF16: 1.0, -0.5.
        for h: UInt16 in [0x3F80, 0xBF00] { withUnsafeBytes(of: h.littleEndian) { data += $0 } }
        withUnsafeBytes(of: (0.1 as Double).bitPattern.littleEndian) { data += $0 }
        for i: Int32 in [-7, 2_000_000_000] { withUnsafeBytes(of: i.littleEndian) { data += $0 } }
        data += [255, 3]
        let file = try SafeTensors.load(path: craft("dtypes.safetensors", header: header, data: data))
        XCTAssertEqual(try file.tensor("h").array, [1, -2.5, 0x1p-24, .infinity])
        XCTAssertEqual(try file.tensor("b").array, [1, -0.5])
        XCTAssertEqual(try file.tensor("d").array, [0.1])
        XCTAssertEqual(try file.int64("i").values, [-7, 2_000_000_000])
        XCTAssertEqual(try file.int64("u").values, [255, 3])
        XCTAssertEqual(file.metadata, ["k": "v"])
    }

    // MARK: Invalid files

    func testTruncatedAndCorruptedCopiesOfTheReferenceFile() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: weightsPath))
        let headerLength = Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })

        let tiny = temporaryPath("tiny.safetensors")
        try bytes.prefix(5).write(to: URL(fileURLWithPath: tiny))
        assertFileError(tiny, "too short")

        let headerCut = temporaryPath("header-cut.safetensors")
        try bytes.prefix(8 + headerLength / 2).write(to: URL(fileURLWithPath: headerCut))
        assertFileError(headerCut, "header length")

        let dataCut = temporaryPath("data-cut.safetensors")
        try bytes.prefix(bytes.count - 1000).write(to: URL(fileURLWithPath: dataCut))
        assertFileError(dataCut, "out of range")

        var corrupt = bytes
        corrupt[8] = UInt8(ascii: "x")  // the header's opening brace
        let badJSON = temporaryPath("bad-json.safetensors")
        try corrupt.write(to: URL(fileURLWithPath: badJSON))
        assertFileError(badJSON, "malformed JSON")

        var unknown = bytes
        let headerBytes = Array(bytes[8 ..< 8 + headerLength]), f32 = Array("\"F32\"".utf8)
        let at = (0 ... headerBytes.count - f32.count).first { Array(headerBytes[$0 ..< $0 + f32.count]) == f32 }!
        unknown[8 + at + 1] = UInt8(ascii: "X")  // "F32" -> "X32"
        let badDtype = temporaryPath("bad-dtype.safetensors")
        try unknown.write(to: URL(fileURLWithPath: badDtype))
        assertFileError(badDtype, "unsupported dtype X32")

        var huge = bytes
        huge.replaceSubrange(0 ..< 8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Array($0) })
        let hugeHeader = temporaryPath("huge-header.safetensors")
        try huge.write(to: URL(fileURLWithPath: hugeHeader))
        assertFileError(hugeHeader, "header length 1099511627776")

        let extra = temporaryPath("trailing.safetensors")
        try (bytes + [0, 0, 0, 0]).write(to: URL(fileURLWithPath: extra))
        assertFileError(extra, "after the last tensor")
    }

    func testHandCraftedInvalidHeaders() throws {
        let eight = floatBytes([1, 2])
        assertFileError(try craft("size.st", header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight),
                        "needs 12 bytes")
        assertFileError(try craft("overlap.st", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight),
                        "overlap")
        assertFileError(try craft("gap.st", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight),
                        "belong to no tensor")
        assertFileError(try craft("range.st", header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: eight),
                        "out of range")
        assertFileError(try craft("reverse.st", header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: eight),
                        "out of range")
        assertFileError(try craft("neg.st", header: #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: eight),
                        "shape")
        assertFileError(try craft("float-shape.st", header: #"{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, data: eight),
                        "shape")
        assertFileError(try craft("bool-offset.st", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[false,8]}}"#, data: eight),
                        "data_offsets")
        assertFileError(try craft("no-dtype.st", header: #"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, data: eight), "dtype")
        assertFileError(try craft("dup.st", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: eight),
                        "twice")
        assertFileError(try craft("array.st", header: "[1, 2]", data: []), "not an object")
        assertFileError(try craft("meta.st", header: #"{"__metadata__":{"k":1}}"#, data: []), "__metadata__")
        assertFileError(try craft("trailing-json.st", header: #"{} x"#, data: []), "malformed JSON")
        assertFileError(try craft("unterminated.st", header: #"{"a"#, data: []), "malformed JSON")
        assertFileError(try craft("deep.st", header: String(repeating: "[", count: 200) + String(repeating: "]", count: 200), data: []),
                        "nested deeper")
        assertFileError(try craft("overflow.st", header: #"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#, data: eight),
                        "too large")
        assertFileError(try craft("short-length.st", header: "{}", data: [], headerLength: 9), "header length 9")
        assertFileError(temporaryPath("does-not-exist.safetensors"), "cannot open")
        assertFileError(directory.path, "not a regular file")

        // Valid edge cases: an empty header, zero-sized tensors sharing an offset, padding spaces.
        XCTAssertTrue(try SafeTensors.load(path: craft("empty.st", header: "{}", data: [])).values.isEmpty)
        let zeros = try SafeTensors.load(path: craft("zero.st", header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"c":{"dtype":"I64","shape":[0,5],"data_offsets":[8,8]}}    "#, data: eight))
        XCTAssertEqual(try zeros.tensor("b").array, [1, 2])
        XCTAssertEqual(try zeros.int64("c").shape, [0, 5])
    }
}
