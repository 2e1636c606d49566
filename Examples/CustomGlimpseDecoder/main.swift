// A plugin in a few lines: SPACE with a different glimpse decoder, registered by name and trained by the
// stock trainer on the built-in generated scenes. Run: swift run -c release custom-glimpse-decoder
import Foundation
import SpaceCore
import SpaceData
import SpaceModels
import SpaceTrain

/// A lighter glimpse decoder: z_what -> an MLP -> RGB and alpha of a gs x gs glimpse. Its parameters are
/// found by reflection (`hidden.0.weight`, `out.weight`, ...) and saved with the rest of the model.
final class MLPGlimpseDecoder: Module, GlimpseDecoder {
    let hidden: Sequential
    let out: Linear
    let size: Int

    init(arch: SpaceArch) {
        size = arch.glimpseSize
        hidden = Sequential(Linear(inputCount: arch.zWhatDim, outputCount: 256), CELU(), Linear(inputCount: 256, outputCount: 256), CELU())
        out = Linear(inputCount: 256, outputCount: 4 * arch.glimpseSize * arch.glimpseSize)
        super.init()
    }

    func callAsFunction(_ zWhat: Tensor) throws -> (Tensor, Tensor) {
        let y = try out(hidden(zWhat)).reshape([zWhat.shape[0], 4, size, size])
        let parts = try y.split(sizes: [3, 1], dim: 1)
        return (parts[0].sigmoid(), parts[1].sigmoid())
    }
}

try ModelRegistry.shared.register("SPACE-mlp-decoder") { arch in
    try Space(arch: arch, foreground: SpaceForeground(arch: arch, glimpseDec: MLPGlimpseDecoder(arch: arch)))
}

var arch = SpaceArch()
arch.G = 4; arch.K = 2
let model = try ModelRegistry.make("SPACE-mlp-decoder", arch: arch)
print("parameters: \(model.parameterCount); glimpse decoder keys: \(model.namedParameters().map { $0.0 }.filter { $0.contains("glimpse_dec") })")

// Eight generated scenes, two batches of four, three steps.
struct Scenes: EpochBatches {
    let images = (0..<8).map { ImagePreprocessing.tensor(from: SceneGenerator(seed: 0).render(index: $0).image) }
    var batchesPerEpoch: Int { 2 }
    func batches(epoch: Int, skip: Int) throws -> AnyIterator<Tensor> {
        var b = skip
        return AnyIterator { guard b < 2 else { return nil }; defer { b += 1 }; return try? Tensor.stack(Array(images[(4 * b)..<(4 * b + 4)]), dim: 0) }
    }
}
var settings = TrainingSettings()
settings.maxSteps = 2; settings.printEvery = 1; settings.saveEvery = 1000; settings.resume = false
settings.checkpointDirectory = NSTemporaryDirectory() + "custom-glimpse-decoder"
let trainer = try Trainer(model: model, data: Scenes(), settings: settings, configYAML: "model: SPACE-mlp-decoder\n")
try trainer.run()
