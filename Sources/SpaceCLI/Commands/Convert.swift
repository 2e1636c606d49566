import ArgumentParser
import Foundation
import SpaceCore

/// `space convert IN OUT.safetensors`: rewrites a PyTorch checkpoint (zip or legacy format) as
/// safetensors, keeping epoch and global step as metadata. Nothing is executed while reading.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a PyTorch .pth checkpoint (the reference's or a bare state dict) to safetensors.")

    @Argument(help: "Input checkpoint (.pth, zip or legacy format).") var input: String
    @Argument(help: "Output .safetensors file (written atomically).") var output: String

    func run() throws {
        let (state, epoch, step) = try WeightFiles.load(path: input)
        var meta: [String: String] = ["source": (input as NSString).lastPathComponent]
        if let epoch { meta["epoch"] = String(epoch) }
        if let step { meta["global_step"] = String(step) }
        try SafeTensors.save(state, metadata: meta, to: output)
        let floats = state.values.reduce(0) { $0 + $1.shape.reduce(1, *) }
        print("wrote \(output): \(state.count) tensors, \(floats) values\(step.map { ", global_step \($0)" } ?? "")")
    }
}
