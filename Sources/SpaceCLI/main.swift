import ArgumentParser
import SpaceCore

// Picks OpenBLAS's fastest supported kernels before anything else runs (see BLASRuntime).
BLASRuntime.ensureFastPath()

/// `space`: the front door of the Space framework.
struct SpaceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "space",
        abstract: "SPACE: unsupervised object-centric scene decomposition, in Swift.",
        subcommands: [Train.self, Evaluate.self, Show.self, Score.self, MakeDataset.self, Parity.self, Convert.self, Smoke.self, Bench.self, BenchStep.self])
}

SpaceCommand.main()
