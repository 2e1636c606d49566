import Foundation
import XCTest
@testable import SpaceCore

/// Reading PyTorch `.pth` checkpoints: the reference's files bit for bit against safetensors, tensors
/// with general strides and dtypes from hand-built files, and every refusal (truncation, corruption,
/// forbidden globals, missing records) as a thrown error naming the file.
final class TorchCheckpointTests: XCTestCase {
    static let fixtures = FixturePaths.parity("atari_si_b2_s100")!
    var temporary: URL!

    override func setUpWithError() throws {
        temporary = FileManager.default.temporaryDirectory.appendingPathComponent("pth-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: temporary)
    }

    private func fixture(_ name: String) throws -> String {
        let path = TorchCheckpointTests.fixtures + "/" + name
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("fixture \(path) is not present") }
        return path
    }

    /// Writes `bytes` to a fresh file in the temporary directory and returns its path.
    private func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let url = temporary.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// Asserts that loading `path` throws `SpaceError.file` for that path whose message contains every one of `parts`.
    private func assertRefused(_ path: String, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        do {
            let c = try TorchCheckpoint.load(path: path)
            XCTFail("loaded \(path) (root \(c.root.typeName)) instead of refusing it", file: file, line: line)
        } catch let SpaceError.file(p, message) {
            XCTAssertEqual(p, path, "the error names another file", file: file, line: line)
            for part in parts where !message.contains(part) {
                XCTFail("message \"\(message)\" lacks \"\(part)\"", file: file, line: line)
            }
        } catch {
            XCTFail("threw \(error), not SpaceError.file", file: file, line: line)
        }
    }

    // MARK: The reference's checkpoints

    private func assertMatchesSafetensors(_ name: String, format: TorchCheckpoint.Format,
                                          file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try SafeTensors.load(path: try fixture("weights.safetensors")).values
        let checkpoint = try TorchCheckpoint.load(path: try fixture(name))
        XCTAssertEqual(checkpoint.format, format, file: file, line: line)
        XCTAssertEqual(checkpoint.epoch, 0, file: file, line: line)
        XCTAssertEqual(checkpoint.globalStep, 100, file: file, line: line)
        XCTAssertEqual(checkpoint["optimizer_fg"]?.isNone, true, file: file, line: line)
        let entries = try checkpoint.stateDictEntries()
        XCTAssertEqual(entries.first?.key, "fg_module.tau", "state dict order", file: file, line: line)
        let state = try checkpoint.stateDict()
        XCTAssertEqual(state.count, entries.count, file: file, line: line)
        XCTAssertEqual(state.count, 285, file: file, line: line)
        XCTAssertEqual(Set(state.keys), Set(expected.keys), file: file, line: line)
        var int64Count = 0
        for (key, want) in expected {
            guard let got = state[key] else { continue }
            XCTAssertEqual(got.shape, want.shape, key, file: file, line: line)
            switch (got, want) {
            case (.float(let a), .float(let b)):
                guard a.shape == b.shape else { continue }
                XCTAssertEqual(memcmp(a.pointer, b.pointer, 4 * a.count), 0, "\(key): bits differ", file: file, line: line)
            case (.int64(let a), .int64(let b)):
                XCTAssertEqual(a.values, b.values, key, file: file, line: line)
                int64Count += 1
            default:
                XCTFail("\(key): \(got.dtype) vs expected \(want.dtype)", file: file, line: line)
            }
        }
        XCTAssertGreaterThan(int64Count, 0, "num_batches_tracked entries are int64", file: file, line: line)
    }

    func testZipCheckpointMatchesSafetensorsBitForBit() throws {
        try assertMatchesSafetensors("model_zip.pth", format: .zip)
    }

    func testLegacyCheckpointMatchesSafetensorsBitForBit() throws {
        try assertMatchesSafetensors("model_legacy.pth", format: .legacy)
    }

    func testLoadTimes() throws {
        for name in ["model_zip.pth", "model_legacy.pth"] {
            let path = try fixture(name)
            let start = DispatchTime.now().uptimeNanoseconds
            let c = try TorchCheckpoint.load(path: path)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print("TorchCheckpoint.load(\(name)): \(String(format: "%.3f", seconds)) s, \(try c.stateDict().count) tensors")
            XCTAssertLessThan(seconds, 10, "\(name) loads far too slowly")
        }
    }

    // MARK: Refusals on the reference's files

    func testTruncatedLegacyFileIsRefused() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: try fixture("model_legacy.pth"))))
        // In the storage data, in the main pickle, and in the first pickle.
        assertRefused(try write(Array(bytes.prefix(bytes.count - 1000)), "cut-data.pth"), ["truncated", "storage"])
        assertRefused(try write(Array(bytes.prefix(20_000)), "cut-pickle.pth"), ["truncated", "the main pickle"])
        assertRefused(try write(Array(bytes.prefix(7)), "cut-magic.pth"), ["truncated", "magic"])
    }

    func testTruncatedZipFileIsRefused() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: try fixture("model_zip.pth"))))
        assertRefused(try write(Array(bytes.prefix(bytes.count / 2)), "cut.pth"), ["zip archive", "end-of-central-directory"])
        // Cut inside the central directory: its end record is gone too.
        assertRefused(try write(Array(bytes.prefix(bytes.count - 30)), "cut-end.pth"), ["zip archive"])
    }

    func testCorruptedOpcodeIsRefused() throws {
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: try fixture("model_legacy.pth"))))
        // Byte 139 is the main pickle's EMPTY_DICT ('}'), right after its PROTO 2.
        XCTAssertEqual(Array(bytes[137 ... 139]), [0x80, 0x02, 0x7D])
        bytes[139] = 0xFF
        assertRefused(try write(bytes, "bad-opcode.pth"), ["the main pickle", "unknown opcode 0xff", "byte 139"])
        bytes[139] = 0x8F   // EMPTY_SET: a real opcode, not allowed
        assertRefused(try write(bytes, "set-opcode.pth"), ["EMPTY_SET", "not allowed", "byte 139"])
    }

    func testCorruptedZipRecordFailsItsChecksum() throws {
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: try fixture("model_zip.pth"))))
        bytes[bytes.count / 2] ^= 0x01
        assertRefused(try write(bytes, "flipped.pth"), ["CRC-32 mismatch", "model_zip/data/"])
    }

    func testNotACheckpointIsRefused() throws {
        assertRefused(try write([], "empty.pth"), ["empty file"])
        assertRefused(try write(Array("hello, world".utf8), "text.pth"), ["not a PyTorch checkpoint"])
        assertRefused(temporary.appendingPathComponent("missing.pth").path, ["cannot open"])
    }

    // MARK: Hand-built files

    func testForbiddenGlobalIsRefused() throws {
        // PROTO 2, GLOBAL 'os\nsystem\n', SHORT_BINUNICODE 'echo pwned', TUPLE1, REDUCE, STOP.
        var evil = PickleWriter()
        evil.global("os", "system")
        evil.shortString("echo pwned")
        evil.op(0x85)
        evil.op(0x52)
        evil.op(0x2E)
        assertRefused(try write(legacyFile(main: evil.bytes, storages: []), "evil-legacy.pth"),
                      ["the main pickle", "refused global 'os.system'", "GLOBAL (0x63) at byte"])
        assertRefused(try write(zipFile(["archive/data.pkl": evil.bytes]), "evil-zip.pth"),
                      ["data.pkl", "refused global 'os.system'", "at byte 2"])

        // STACK_GLOBAL builtins.eval.
        var eval = PickleWriter()
        eval.shortString("builtins")
        eval.shortString("eval")
        eval.op(0x93)
        eval.shortString("1+1")
        eval.op(0x85)
        eval.op(0x52)
        eval.op(0x2E)
        assertRefused(try write(zipFile(["archive/data.pkl": eval.bytes]), "eval.pth"), ["refused global 'builtins.eval'", "STACK_GLOBAL"])

        // An allowed global that is not callable: torch.FloatStorage(...).
        var storage = PickleWriter()
        storage.global("torch", "FloatStorage")
        storage.op(0x29)
        storage.op(0x52)
        storage.op(0x2E)
        assertRefused(try write(zipFile(["archive/data.pkl": storage.bytes]), "storage-call.pth"),
                      ["torch.FloatStorage may appear only as a value", "REDUCE"])
    }

    func testZipWithoutDataPickleIsRefused() throws {
        let path = try write(zipFile(["archive/version": Array("3\n".utf8), "archive/data/0": [0, 0, 0, 0]]), "no-pkl.pth")
        assertRefused(path, ["no 'archive/data.pkl' record"])
    }

    func testCompressedZipRecordIsRefused() throws {
        var p = PickleWriter()
        p.op(0x7D)
        p.op(0x2E)
        let path = try write(zipFile(["archive/data.pkl": p.bytes], method: 8), "deflated.pth")
        assertRefused(path, ["deflate-compressed", "only stored"])
    }

    func testTensorOutsideItsStorageIsRefused() throws {
        var p = PickleWriter()
        p.op(0x7D)
        p.shortString("w")
        // 4 elements at offset 1 of a 4-element storage.
        p.tensor(storage: "FloatStorage", key: "0", numel: 4, offset: 1, size: [4], stride: [1])
        p.op(0x73)
        p.op(0x2E)
        let path = try write(zipFile(["archive/data.pkl": p.bytes, "archive/data/0": floatBytes([1, 2, 3, 4])]), "oob.pth")
        assertRefused(path, ["reaches element 4 of storage '0', which has 4 elements", "REDUCE"])
    }

    func testStorageRecordOfWrongSizeIsRefused() throws {
        var p = PickleWriter()
        p.tensor(storage: "FloatStorage", key: "0", numel: 4, offset: 0, size: [4], stride: [1])
        p.op(0x2E)
        let path = try write(zipFile(["archive/data.pkl": p.bytes, "archive/data/0": floatBytes([1, 2, 3])]), "short-storage.pth")
        assertRefused(path, ["storage '0' should hold 4 FloatStorage elements but its record has 12 bytes"])
    }

    func testCyclicPickleIsRefused() throws {
        // l = []; l.append(l)
        var p = PickleWriter()
        p.op(0x5D)
        p.op(0x71, 0)       // BINPUT 0
        p.op(0x68, 0)       // BINGET 0
        p.op(0x61)          // APPEND
        p.op(0x2E)
        assertRefused(try write(zipFile(["archive/data.pkl": p.bytes]), "cycle.pth"), ["contains itself"])
    }

    func testDeepNestingIsRefused() throws {
        // ((((... [] ...,),),), 100 000 levels: refused, and released without overflowing the stack.
        var p = PickleWriter()
        p.op(0x5D)
        for _ in 0..<100_000 { p.op(0x85) }
        p.op(0x2E)
        assertRefused(try write(zipFile(["archive/data.pkl": p.bytes]), "deep.pth"), ["nest deeper than"])
    }

    func testMalformedPicklesAreRefused() throws {
        func refused(_ body: (inout PickleWriter) -> Void, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) throws {
            var p = PickleWriter()
            body(&p)
            assertRefused(try write(zipFile(["archive/data.pkl": p.bytes]), "malformed-\(line).pth"), parts, file: file, line: line)
        }
        try refused({ $0.op(0x7D); $0.op(0x68, 7); $0.op(0x2E) }, ["memo entry 7 was never stored"])
        try refused({ $0.op(0x73); $0.op(0x2E) }, ["stack underflow", "SETITEM"])
        try refused({ $0.op(0x7D); $0.op(0x7D); $0.op(0x2E) }, ["STOP with 2 objects"])
        try refused({ $0.op(0x58, 0xFF, 0xFF, 0xFF, 0x7F) }, ["truncated", "BINUNICODE"])
        try refused({ $0.op(0x7D) }, ["truncated", "before the pickle's STOP"])
        try refused({ $0.op(0x49); $0.op(0x31, 0x0A) }, ["INT (0x49)", "not allowed"])
        try refused({ $0.op(0x7D); $0.op(0x4E); $0.op(0x4E); $0.op(0x73); $0.op(0x2E) }, ["dict key of type None"])
        try refused({ $0.shortString("x"); $0.op(0x51); $0.op(0x2E) }, ["persistent id is a str"])
        try refused({ $0.op(0x80, 9) }, ["unsupported pickle protocol 9"])
    }

    /// Strides, offsets into a shared storage, broadcasting, scalars and every dtype, in both byte orders.
    func testGeneralStridesAndDtypesFromHandBuiltZip() throws {
        for bigEndian in [false, true] {
            var p = PickleWriter()
            p.op(0x7D)          // EMPTY_DICT
            p.op(0x28)          // MARK
            p.shortString("transposed")
            p.tensor(storage: "FloatStorage", key: "0", numel: 12, offset: 1, size: [3, 2], stride: [1, 3])
            p.shortString("shared")
            p.tensor(storage: "FloatStorage", key: "0", numel: 12, offset: 0, size: [2], stride: [6])
            p.shortString("broadcast")
            p.tensor(storage: "FloatStorage", key: "0", numel: 12, offset: 9, size: [2, 3], stride: [0, 1])
            p.shortString("scalar")
            p.tensor(storage: "FloatStorage", key: "0", numel: 12, offset: 11, size: [], stride: [])
            p.shortString("empty")
            p.tensor(storage: "FloatStorage", key: "0", numel: 12, offset: 0, size: [0, 5], stride: [5, 1])
            p.shortString("double")
            p.tensor(storage: "DoubleStorage", key: "1", numel: 2, offset: 0, size: [2], stride: [1])
            p.shortString("half")
            p.tensor(storage: "HalfStorage", key: "2", numel: 4, offset: 0, size: [2, 2], stride: [2, 1])
            p.shortString("bf16")
            p.tensor(storage: "BFloat16Storage", key: "3", numel: 1, offset: 0, size: [1], stride: [1])
            p.shortString("long")
            p.tensor(storage: "LongStorage", key: "4", numel: 3, offset: 0, size: [2], stride: [2])
            p.shortString("int")
            p.tensor(storage: "IntStorage", key: "5", numel: 2, offset: 1, size: [], stride: [])
            p.shortString("param")
            p.global("torch._utils", "_rebuild_parameter")
            p.op(0x28)
            p.tensor(storage: "FloatStorage", key: "0", numel: 12, offset: 2, size: [2], stride: [1])
            p.op(0x88)      // requires_grad True
            p.orderedDict()
            p.op(0x74)      // TUPLE
            p.op(0x52)      // REDUCE
            p.op(0x75)      // SETITEMS
            p.op(0x2E)

            func order<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: bigEndian ? v.bigEndian : v.littleEndian) { Array($0) } }
            let records: [String: [UInt8]] = [
                "archive/data.pkl": p.bytes,
                "archive/byteorder": Array((bigEndian ? "big" : "little").utf8),
                "archive/version": Array("3\n".utf8),
                "archive/data/0": (0..<12).flatMap { order(Float($0).bitPattern) },
                "archive/data/1": [1.5, -2.25].flatMap { order(Double($0).bitPattern) },
                "archive/data/2": ([0x3C00, 0xC000, 0x0001, 0x7C00] as [UInt16]).flatMap { order($0) },
                "archive/data/3": order(UInt16(0x4049)),   // bfloat16 3.140625
                "archive/data/4": ([7, -1, Int64.min] as [Int64]).flatMap { order($0) },
                "archive/data/5": ([5, -6] as [Int32]).flatMap { order($0) },
            ]
            let checkpoint = try TorchCheckpoint.load(path: try write(zipFile(records), "dtypes-\(bigEndian).pth"))
            let state = try checkpoint.stateDict(key: nil)
            XCTAssertEqual(try checkpoint.stateDictEntries().map(\.key),
                           ["transposed", "shared", "broadcast", "scalar", "empty", "double", "half", "bf16", "long", "int", "param"])
            func floats(_ k: String) -> Tensor? { state[k]?.tensor }
            XCTAssertEqual(floats("transposed")?.shape, [3, 2])
            XCTAssertEqual(floats("transposed")?.array, [1, 4, 2, 5, 3, 6])
            XCTAssertEqual(floats("shared")?.array, [0, 6])
            XCTAssertEqual(floats("broadcast")?.array, [9, 10, 11, 9, 10, 11])
            XCTAssertEqual(floats("scalar")?.shape, [])
            XCTAssertEqual(floats("scalar")?.array, [11])
            XCTAssertEqual(floats("empty")?.shape, [0, 5])
            XCTAssertEqual(floats("double")?.array, [1.5, -2.25])
            XCTAssertEqual(floats("half")?.array, [1, -2, 0x1p-24, .infinity])
            XCTAssertEqual(floats("bf16")?.array, [3.140625])
            XCTAssertEqual(state["long"]?.int64Tensor?.values, [7, Int64.min])
            XCTAssertEqual(state["int"]?.int64Tensor?.shape, [])
            XCTAssertEqual(state["int"]?.int64Tensor?.values, [-6])
            XCTAssertEqual(floats("param")?.array, [2, 3])
            XCTAssertNil(checkpoint.epoch)
        }
    }

    /// A legacy file whose pickle names a storage view (PyTorch < 1.0 view metadata), plus non-tensor values.
    func testLegacyStorageViewsAndPlainValues() throws {
        var p = PickleWriter()
        p.op(0x7D)
        p.op(0x28)
        p.shortString("model")
        p.orderedDict()
        p.op(0x28)
        p.shortString("a")
        // storage 'root' of 6 floats; view 'v' = elements [2, 5) of it; tensor = view[1...2].
        p.global("torch._utils", "_rebuild_tensor_v2")
        p.op(0x28)
        p.op(0x28)
        p.shortString("storage")
        p.global("torch", "FloatStorage")
        p.shortString("root")
        p.shortString("cpu")
        p.int(6)
        p.op(0x28); p.shortString("v"); p.int(2); p.int(3); p.op(0x74)
        p.op(0x74)
        p.op(0x51)
        p.int(1)
        p.op(0x28); p.int(2); p.op(0x74)
        p.op(0x28); p.int(1); p.op(0x74)
        p.op(0x89)
        p.orderedDict()
        p.op(0x74)
        p.op(0x52)
        p.op(0x75)
        p.shortString("epoch")
        p.int(3)
        p.shortString("global_step")
        p.op(0x8A, 5, 0x00, 0xE4, 0x0B, 0x54, 0x02)   // LONG1 10^10
        p.shortString("lr")
        p.op(0x47); p.bytes += withUnsafeBytes(of: (0.5 as Double).bitPattern.bigEndian) { Array($0) }
        p.shortString("betas")
        p.op(0x47); p.bytes += withUnsafeBytes(of: (0.9 as Double).bitPattern.bigEndian) { Array($0) }
        p.op(0x4E)
        p.op(0x86)
        p.op(0x75)
        p.op(0x2E)
        let path = try write(legacyFile(main: p.bytes, storages: [("root", floatBytes([0, 1, 2, 3, 4, 5]))]), "views.pth")
        let checkpoint = try TorchCheckpoint.load(path: path)
        XCTAssertEqual(checkpoint.format, .legacy)
        XCTAssertEqual(try checkpoint.stateDict()["a"]?.tensor?.array, [3, 4])
        XCTAssertEqual(checkpoint.epoch, 3)
        XCTAssertEqual(checkpoint.globalStep, 10_000_000_000)
        XCTAssertEqual(checkpoint["lr"]?.doubleValue, 0.5)
        XCTAssertEqual(checkpoint["betas"]?.items?.count, 2)
        XCTAssertEqual(checkpoint["betas"]?.items?.last?.isNone, true)

        // The same file with its storage's element count corrupted, and with the storage cut short.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let countAt = bytes.count - 24 - 8
        XCTAssertEqual(bytes[countAt], 6)
        bytes[countAt] = 7
        assertRefused(try write(bytes, "views-count.pth"), ["storage 'root'", "records 7 elements, the pickle says 6"])
        bytes[countAt] = 6
        assertRefused(try write(Array(bytes.dropLast(4)), "views-cut.pth"), ["truncated", "storage 'root'"])
    }

    func testStateDictErrors() throws {
        var p = PickleWriter()
        p.op(0x7D)
        p.op(0x28)
        p.shortString("epoch")
        p.int(1)
        p.shortString("config")
        p.shortString("x")
        p.op(0x75)
        p.op(0x2E)
        let path = try write(zipFile(["archive/data.pkl": p.bytes]), "no-model.pth")
        let checkpoint = try TorchCheckpoint.load(path: path)
        XCTAssertEqual(checkpoint.epoch, 1)
        XCTAssertThrowsError(try checkpoint.stateDict()) { error in
            XCTAssertEqual(error as? SpaceError, .file(path: path, message: "the checkpoint has no entry 'model' and its root dict is not a state dict (it holds 'epoch', 'config')"))
        }
        XCTAssertThrowsError(try checkpoint.stateDict(key: nil)) { error in
            XCTAssertEqual(error as? SpaceError, .file(path: path, message: "the checkpoint's root dict maps 'epoch' to an int, not a tensor"))
        }
    }

    func testCRC32() {
        let check = Array("123456789".utf8)
        XCTAssertEqual(check.withUnsafeBytes { ZipArchive.crc32($0) }, 0xCBF4_3926)
        let long = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        // Bitwise reference.
        var c: UInt32 = 0xFFFF_FFFF
        for b in long {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        XCTAssertEqual(long.withUnsafeBytes { ZipArchive.crc32($0) }, ~c)
    }

    // MARK: Building files by hand

    private func floatBytes(_ v: [Float]) -> [UInt8] { v.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } } }

    /// A legacy-format file: magic, protocol version, sys_info, `main`, the key list, then the storages.
    private func legacyFile(main: [UInt8], storages: [(key: String, data: [UInt8])], elementSize: Int = 4) -> [UInt8] {
        var out: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]
        out += [0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E]
        var sys = PickleWriter()
        sys.op(0x7D)
        sys.shortString("little_endian")
        sys.op(0x88)
        sys.op(0x73)
        sys.op(0x2E)
        out += sys.bytes
        out += main
        var keys = PickleWriter()
        keys.op(0x5D)
        keys.op(0x28)
        for s in storages { keys.shortString(s.key) }
        keys.op(0x65)
        keys.op(0x2E)
        out += keys.bytes
        for s in storages {
            out += withUnsafeBytes(of: Int64(s.data.count / elementSize).littleEndian) { Array($0) }
            out += s.data
        }
        return out
    }

    /// A ZIP archive of stored records (or records claiming compression `method`), in key order.
    private func zipFile(_ records: [String: [UInt8]], method: UInt16 = 0) -> [UInt8] {
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        var out: [UInt8] = []
        var central: [UInt8] = []
        let names = records.keys.sorted { ($0.hasSuffix("data.pkl") ? 0 : 1, $0) < ($1.hasSuffix("data.pkl") ? 0 : 1, $1) }
        for name in names {
            let data = records[name]!
            let crc = data.withUnsafeBytes { ZipArchive.crc32($0) }
            let offset = UInt32(out.count)
            let n = Array(name.utf8)
            out += le(UInt32(0x0403_4B50)) + le(UInt16(20)) + le(UInt16(0)) + le(method) + le(UInt16(0)) + le(UInt16(0))
            out += le(crc) + le(UInt32(data.count)) + le(UInt32(data.count)) + le(UInt16(n.count)) + le(UInt16(0)) + n + data
            central += le(UInt32(0x0201_4B50)) + le(UInt16(20)) + le(UInt16(20)) + le(UInt16(0)) + le(method)
            central += le(UInt16(0)) + le(UInt16(0)) + le(crc) + le(UInt32(data.count)) + le(UInt32(data.count))
            central += le(UInt16(n.count)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(offset) + n
        }
        let cdOffset = UInt32(out.count)
        out += central
        out += le(UInt32(0x0605_4B50)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(names.count)) + le(UInt16(names.count))
        out += le(UInt32(central.count)) + le(cdOffset) + le(UInt16(0))
        return out
    }
}

/// Emits protocol-2 pickle opcodes.
private struct PickleWriter {
    var bytes: [UInt8] = [0x80, 0x02]

    mutating func op(_ code: UInt8, _ operands: UInt8...) { bytes.append(code); bytes += operands }

    mutating func shortString(_ s: String) {
        let u = Array(s.utf8)
        bytes += [0x8C, UInt8(u.count)] + u
    }

    mutating func int(_ i: Int) {
        bytes.append(0x4A)
        bytes += withUnsafeBytes(of: Int32(i).littleEndian) { Array($0) }
    }

    mutating func global(_ module: String, _ name: String) {
        bytes.append(0x63)
        bytes += Array("\(module)\n\(name)\n".utf8)
    }

    /// collections.OrderedDict()
    mutating func orderedDict() {
        global("collections", "OrderedDict")
        op(0x29)
        op(0x52)
    }

    /// torch._utils._rebuild_tensor_v2(('storage', torch.<storage>, key, 'cpu', numel), offset, size, stride, False, OrderedDict())
    mutating func tensor(storage: String, key: String, numel: Int, offset: Int, size: [Int], stride: [Int]) {
        global("torch._utils", "_rebuild_tensor_v2")
        op(0x28)
        op(0x28)
        shortString("storage")
        global("torch", storage)
        shortString(key)
        shortString("cpu")
        int(numel)
        op(0x74)
        op(0x51)
        int(offset)
        op(0x28); size.forEach { int($0) }; op(0x74)
        op(0x28); stride.forEach { int($0) }; op(0x74)
        op(0x89)
        orderedDict()
        op(0x74)
        op(0x52)
    }
}
