import ArgumentParser
import Foundation
import SpaceCore
import SpaceModels
import SpaceTrain

/// `space bench-step`: times full SPACE training steps (forward, backward, clipping, both optimizers)
/// at a reference configuration, on random images. Use the release build.
struct BenchStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-step",
        abstract: "Benchmark one SPACE training step (release build).")

    @Option(help: "Preset: atari (G=16, K=3, the atari_spaceinvaders arch) or room (G=16, K=5, 3d_room_large).")
    var preset = "atari"
    @Option(help: "Batch size.") var batch = 12
    @Option(help: "Timed steps (after one warm-up step).") var steps = 3
    @Option(help: "Global step the model runs at (drives annealing and fix-alpha).") var globalStep = 5000

    func run() throws {
        var arch = SpaceArch()
        switch preset {
        case "atari":
            arch.G = 16; arch.K = 3; arch.fgSigma = 0.2; arch.bgSigma = 0.1; arch.boundaryLoss = false
            arch.fixAlphaSteps = 2000; arch.fixAlphaValue = 0.2
        case "room":
            arch.G = 16; arch.K = 5
        default: throw ValidationError("unknown preset '\(preset)' (atari, room)")
        }
        print("OpenBLAS core: \(BLASRuntime.coreName), threads: \(BLASRuntime.threads)")
        print("preset \(preset): B=\(batch), G=\(arch.G), K=\(arch.K), 128x128, global step \(globalStep)")
        let model = try Space(arch: arch)
        let groups = model.parameterGroups()
        let fgOpt = RMSprop(learningRate: 1e-5), bgOpt = Adam(learningRate: 1e-3)
        let all = model.parameters()
        let noise = SeededNoise(seed: 1)
        let x = noise.uniform([batch, 3, 128, 128])
        var fwd: [Double] = [], bwd: [Double] = [], opt: [Double] = []
        for i in 0...steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let out = try model(x, globalStep: globalStep, noise: noise)
            let t1 = DispatchTime.now().uptimeNanoseconds
            try out.loss.backward()
            let t2 = DispatchTime.now().uptimeNanoseconds
            clipGradNorm(all, maxNorm: 1)
            try fgOpt.step(groups.fg)
            try bgOpt.step(groups.bg)
            model.zeroGrad()
            let t3 = DispatchTime.now().uptimeNanoseconds
            if i > 0 {
                fwd.append(Double(t1 - t0) * 1e-9); bwd.append(Double(t2 - t1) * 1e-9); opt.append(Double(t3 - t2) * 1e-9)
            }
            print(String(format: "step %d: forward %.3f s, backward %.3f s, clip+optimizers %.3f s, loss %.1f%@", i,
                         Double(t1 - t0) * 1e-9, Double(t2 - t1) * 1e-9, Double(t3 - t2) * 1e-9, try out.loss.item(),
                         i == 0 ? " (warm-up)" : ""))
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let total = zip(zip(fwd, bwd), opt).map { $0.0 + $0.1 + $1 }
        print(String(format: "median: forward %.3f s, backward %.3f s, clip+optimizers %.3f s, step %.3f s",
                     median(fwd), median(bwd), median(opt), median(total)))
        print(String(format: "peak resident memory: %.2f GB", Double(peakResidentBytes()) / 1e9))
    }
}

/// The process's peak resident set size (VmHWM), in bytes.
func peakResidentBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return 0 }
    let kb = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int($0) }.first ?? 0
    return kb * 1024
}
