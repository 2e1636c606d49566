import ArgumentParser
import Foundation
import SpaceCore
import SpaceData
import SpaceEval
import SpaceModels
import SpaceTrain

/// `space show --config FILE [KEY VALUE ...]`: one PNG of the model's decomposition of show.indices of
/// the show.mode split: per image a row of input, reconstruction, foreground, background, alpha map,
/// input with predicted boxes, then each background component and its mask.
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
        let grid = try decompositionGrid(images: images, output: out)
        try FileManager.default.createDirectory(atPath: exp.demoDirectory, withIntermediateDirectories: true)
        let path = (exp.demoDirectory as NSString).appendingPathComponent("\(exp.expName).png")
        try PNGCodec.write(try ImagePreprocessing.image(from: grid), to: path)
        print("The result image has been saved to \(path)")
    }
}

/// Rows of [input, reconstruction, fg, bg, alpha, input+boxes, comp_1..K, mask_1..K], 2-pixel white padding.
func decompositionGrid(images: Tensor, output: SpaceOutput) throws -> Tensor {
    let f = output.foreground, bgOut = output.background
    let (n, h, w) = (images.shape[0], images.shape[2], images.shape[3])
    let k = bgOut.comps.shape[1], cells = f.zWhere.shape[1]
    let zw = f.zWhere.array, zp = f.zPresProb.array
    var tiles: [Tensor] = []
    for b in 0..<n {
        let x = try images.select(dim: 0, index: b)
        let boxes = boxesFromLatents(zWhere: Array(zw[(b * cells * 4)..<((b + 1) * cells * 4)]), zPresProb: Array(zp[(b * cells)..<((b + 1) * cells)]))
        tiles += [x, try output.y.select(dim: 0, index: b), try f.fg.select(dim: 0, index: b), try bgOut.bg.select(dim: 0, index: b),
                  try f.alphaMap.select(dim: 0, index: b).expand([3, h, w]), drawBoxes(x, boxes, thickness: 1)]
        let comps = try bgOut.comps.select(dim: 0, index: b), masks = try bgOut.masks.select(dim: 0, index: b)
        for j in 0..<k { tiles.append(try comps.select(dim: 0, index: j)) }
        for j in 0..<k { tiles.append(try masks.select(dim: 0, index: j).expand([3, h, w])) }
    }
    return try makeGrid(images: tiles, columns: 6 + 2 * k, padding: 2, padValue: 1)
}
