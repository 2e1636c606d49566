import ArgumentParser
import Foundation
import SpaceCore
import SpaceData
import SpaceEval
import SpaceModels
import SpaceTrain

/// `space show --config FILE [KEY VALUE ...]`: one PNG of the model's decomposition of show.indices of
/// the show.mode split (see `DecompositionPicture`): titled columns of input, reconstruction,
/// foreground, background, alpha map, input with the boxes found (coloured by confidence, with the
/// count found and true), then each background component and its mask.
struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Draw the decomposition of a few images into output/demo/<exp_name>.png.")

    @Option(help: "YAML config.") var config: String?
    @Argument(parsing: .captureForPassthrough, help: "KEY VALUE overrides.") var overrides: [String] = []

    func run() throws {
        let exp = try Experiment.load(configFile: config, overrides: overrides)
        let model = try exp.loadModel(from: try exp.checkpointForEvaluation(preferBest: false))
        guard let split = DatasetSplit(rawValue: exp.config.show.mode) else {
            throw SpaceError.argument(op: "show", message: "show.mode '\(exp.config.show.mode)' is not one of train, val, test")
        }
        let dataset = try exp.dataset(split)
        let indices = exp.config.show.indices
        for i in indices where i < 0 || i >= dataset.count {
            throw SpaceError.argument(op: "show", message: "show.indices has \(i), but the \(split.rawValue) split has \(dataset.count) images")
        }
        let images = try Tensor.stack(indices.map { try dataset.image(at: $0) }, dim: 0)
        let out = try Tensor.noGrad {
            try model(images, globalStep: Evaluator.evaluationStep, noise: SeededNoise(seed: UInt64(truncatingIfNeeded: exp.config.seed)))
        }
        let source = DatasetEvaluationSource(dataset: dataset)
        let truth = try indices.map { try source.groundTruth($0) }
        let grid = try DecompositionPicture(scale: 2).render(images: images, output: out,
                                                             truth: truth.contains { $0 == nil } ? nil : truth.map { $0! })
        try FileManager.default.createDirectory(atPath: exp.demoDirectory, withIntermediateDirectories: true)
        let path = (exp.demoDirectory as NSString).appendingPathComponent("\(exp.expName).png")
        try PNGCodec.write(try ImagePreprocessing.image(from: grid), to: path)
        print("The result image has been saved to \(path)")
    }
}
