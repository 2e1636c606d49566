import Foundation

/// Where the parity fixtures are: the project's copy under Tests/Fixtures/parity (so tests run from a
/// clean clone), else the shared folder beside the repository.
enum FixturePaths {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()

    static func parity(_ name: String) -> String? {
        let candidates = [
            testsDirectory.appendingPathComponent("Fixtures/parity/\(name)").path,
            testsDirectory.appendingPathComponent("../../shared/parity/\(name)").standardized.path,
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/meta.json") }
    }
}
