import ArgumentParser
import Foundation
import SpaceCore
import SpaceTrain

/// `space parity DIR...`: replays recorded reference training steps and reports the worst error of every
/// output, gradient and after-step value against the fixture's tolerances.
struct Parity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check numerical parity against recorded reference training steps.",
        discussion: "Each DIR holds meta.json, weights.safetensors and expected.safetensors (see the parity fixtures' README). Exit status 1 if any check fails.")

    @Argument(help: "Fixture folders.") var directories: [String]
    @Flag(help: "List every row, not only failures and the closest calls.") var all = false

    func run() throws {
        var failed = false
        for dir in directories {
            let fixture = try ParityFixture(directory: dir)
            print("== \(dir)  (G=\(fixture.arch.G), K=\(fixture.arch.K), step \(fixture.globalStep), \(fixture.training ? "train" : "eval") mode)")
            let result = try fixture.run()
            print(all ? result.rows.map { "\($0.passed ? "ok  " : "FAIL") \($0.kind.rawValue) \($0.name): \($0.worstError) (tol \($0.tolerance)) \($0.note)" }.joined(separator: "\n")
                      : ParityCheck.format(result.rows))
            print(String(format: "forward %.3f s, backward %.3f s", result.forwardSeconds, result.backwardSeconds))
            print(result.passed ? "PASS" : "FAIL")
            failed = failed || !result.passed
        }
        if failed { throw ExitCode(1) }
    }
}
