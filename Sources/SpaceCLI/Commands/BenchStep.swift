import ArgumentParser
import Foundation
import SpaceCore
import SpaceModels
import SpaceTrain

/// `space bench-step`: times SPACE at a reference configuration on random images (use the release build):
/// a full training step (`train`: forward, backward, clipping, both optimizers), a no-grad full forward in
/// evaluation mode (`eval`: what `space eval` and `show` run), or the boxes-only path (`detect`: the
/// foreground image encoder, z_pres / z_where / z_depth, no grad).
struct BenchStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-step",
        abstract: "Benchmark a SPACE training step, evaluation forward or detection (release build).")

    enum Mode: String, ExpressibleByArgument, CaseIterable { case train, eval, detect }

    @Option(help: "Preset: atari (G=16, K=3, the atari_spaceinvaders arch) or room (G=16, K=5, 3d_room_large).")
    var preset = "atari"
    @Option(help: "What to time: train (a full training step), eval (no-grad forward), detect (boxes only).")
    var mode: Mode = .train
    @Option(help: "Batch size.") var batch = 12
    @Option(help: "Timed steps.") var steps = 5
    @Option(help: "Untimed warm-up steps first (the first creates the convolution kernels; the next ones let memory settle into its steady layout).")
    var warmup = 2
    @Option(help: "Global step the model runs at (drives annealing and fix-alpha).") var globalStep = 5000
    @Flag(help: "Profile the timed steps: time per op kind and per layer, convolution shapes and GFLOP/s, bytes allocated.")
    var profile = false
    @Option(help: "Also write the results (and the profile) as JSON to this file ('-' for standard output; the human-readable lines then go to standard error).")
    var json: String?

    func run() throws {
        guard let arch = BenchStep.presets[preset] else {
            throw ValidationError("unknown preset '\(preset)' (\(BenchStep.presets.keys.sorted().joined(separator: ", ")))")
        }
        guard batch >= 1, steps >= 1, warmup >= 0 else { throw ValidationError("--batch and --steps must be at least 1, --warmup at least 0") }
        let toStdout = json == "-"
        func say(_ line: String) {
            if toStdout { FileHandle.standardError.write((line + "\n").data(using: .utf8)!) } else { print(line) }
        }
        say("engine: \(EngineInfo.summary)")
        say("preset \(preset), mode \(mode.rawValue): B=\(batch), G=\(arch.G), K=\(arch.K), 128x128, global step \(globalStep)")
        let model = try Space(arch: arch)
        let groups = model.parameterGroups()
        let fgOpt = RMSprop(learningRate: 1e-5), bgOpt = Adam(learningRate: 1e-3)
        let all = model.parameters()
        if mode != .train { model.eval() }
        let noise = SeededNoise(seed: 1)
        let x = noise.uniform([batch, 3, 128, 128])
        let profiler = Profiler()
        profiler.attach(model)

        var phases: [String: [Double]] = [:]
        var totals: [Double] = [], allocated: [Int] = [], cpuTimes: [Double] = []
        var peakLive = 0, liveAfterForward = 0
        var stealStart = MachineLoad.read()
        for i in 0..<(warmup + steps) {
            if i == warmup { stealStart = MachineLoad.read() }
            let cpu0 = MachineLoad.processCPUSeconds()
            let timed = i >= warmup
            if timed && profile { profiler.reset(); profiler.start() }
            if timed { TensorMemory.resetPeak() }
            var parts: [(String, Double)] = []
            var clock = DispatchTime.now().uptimeNanoseconds
            func lap(_ name: String) {
                let now = DispatchTime.now().uptimeNanoseconds
                parts.append((name, Double(now - clock) * 1e-9))
                clock = now
            }
            var lossText = ""
            switch mode {
            case .train:
                let out = try model(x, globalStep: globalStep, noise: noise)
                lap("forward")
                liveAfterForward = TensorMemory.stats.live
                try out.loss.backward()
                lap("backward")
                clipGradNorm(all, maxNorm: 1)
                try fgOpt.step(groups.fg)
                try bgOpt.step(groups.bg)
                model.zeroGrad()
                lap("clip+optimizers")
                lossText = String(format: ", loss %.1f", try out.loss.item())
            case .eval:
                let out = try Tensor.noGrad { try model(x, globalStep: globalStep, noise: noise) }
                lap("forward")
                lossText = String(format: ", loss %.1f", try out.loss.item())
            case .detect:
                let fg = model.fgModule
                fg.anneal(step: globalStep)
                let lat = try Tensor.noGrad { try fg.imgEncoder(x, tau: fg.tau.pointer[0], noise: noise) }
                lap("encoder")
                lossText = String(format: ", mean z_pres %.3f", lat.zPres.array.reduce(0, +) / Float(lat.zPres.count))
            }
            profiler.stop()
            let total = parts.reduce(0) { $0 + $1.1 }
            let cpu = MachineLoad.processCPUSeconds() - cpu0
            let text = parts.map { "\($0.0) \(BenchStep.seconds($0.1))" }.joined(separator: ", ")
            say("step \(i): \(text)\(lossText)" + String(format: " (cpu %.2f s, arena %.2f GB)", cpu, Double(TensorMemory.stats.arena) / 1e9) + (timed ? "" : " (warm-up)"))
            if timed {
                peakLive = max(peakLive, TensorMemory.stats.peakLive)
                for (k, v) in parts { phases[k, default: []].append(v) }
                totals.append(total)
                cpuTimes.append(cpu)
                allocated.append(profiler.bytesAllocated)
            }
        }
        let stolen = MachineLoad.read().stealFraction(since: stealStart)
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let phaseNames = mode == .train ? ["forward", "backward", "clip+optimizers"] : (mode == .eval ? ["forward"] : ["encoder"])
        let med = median(totals)
        let fps = Double(batch) / med
        let peak = peakResidentBytes()
        say("median: " + phaseNames.map { "\($0) \(BenchStep.seconds(median(phases[$0]!)))" }.joined(separator: ", ")
            + ", step \(BenchStep.seconds(med))" + String(format: " (%.1f frames/s)", fps))
        let mem = TensorMemory.stats
        say(String(format: "peak resident memory: %.2f GB (tensors and scratch: at most %.2f GB live at once in a step, %.2f GB after the forward pass; arena high-water %.2f GB; at most %.2f GB of it scratch)",
                    Double(peak) / 1e9, Double(peakLive) / 1e9, Double(liveAfterForward) / 1e9, Double(mem.arena) / 1e9,
                    Double(mem.scratch) / 1e9))
        say(String(format: "process cpu time per step: median %.2f s; cpu time stolen by the hypervisor during the timed steps: %.0f%%",
                    median(cpuTimes), 100 * stolen)
            + (stolen > 0.05 ? " (the machine is shared: wall times are inflated)" : ""))

        var report: [Profiler.Entry] = []
        if profile {
            report = profiler.report
            say(String(format: "allocated per step: %.2f GB in %d tensors", Double(profiler.bytesAllocated) / 1e9, profiler.allocations))
            for line in ProfileReport.lines(report, stepSeconds: med) { say(line) }
        }
        if let json {
            let result = BenchResult(preset: preset, mode: mode.rawValue, batch: batch, G: arch.G, K: arch.K, globalStep: globalStep,
                                     engine: EngineInfo.summary, stepSeconds: totals, medianStepSeconds: med, framesPerSecond: fps,
                                     phases: phases, cpuSecondsPerStep: cpuTimes, stealFraction: stolen, peakResidentBytes: peak,
                                     peakLiveTensorBytes: peakLive, arenaBytes: mem.arena,
                                     bytesAllocatedPerStep: profile ? profiler.bytesAllocated : nil,
                                     profile: profile ? report : nil)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(result)
            if toStdout {
                FileHandle.standardOutput.write(data)
                FileHandle.standardOutput.write("\n".data(using: .utf8)!)
            } else {
                try data.write(to: URL(fileURLWithPath: json), options: .atomic)
                say("wrote \(json)")
            }
        }
    }
}

extension BenchStep {
    /// A duration for the report: milliseconds below a tenth of a second, seconds above.
    static func seconds(_ t: Double) -> String {
        t < 0.1 ? String(format: "%.2f ms", t * 1e3) : String(format: "%.3f s", t)
    }

    /// The arch sections of configs/atari_spaceinvaders.yaml and configs/3d_room_large.yaml (the
    /// reference's values), so the benchmark runs what those configs train.
    static let presets: [String: SpaceArch] = {
        var atari = SpaceArch()
        atari.G = 16; atari.K = 3; atari.fgSigma = 0.2; atari.bgSigma = 0.1; atari.boundaryLoss = false
        atari.zPresStartStep = 4000; atari.zPresEndStep = 10000; atari.zPresStartValue = 0.1; atari.zPresEndValue = 0.01
        atari.zScaleMeanStartStep = 0; atari.zScaleMeanEndStep = 20000
        atari.zScaleMeanStartValue = -2.2; atari.zScaleMeanEndValue = -2.5; atari.zScaleStdValue = 0.2
        atari.tauStartStep = 0; atari.tauEndStep = 20000; atari.tauStartValue = 2.5; atari.tauEndValue = 0.1
        atari.fixAlphaSteps = 2000; atari.fixAlphaValue = 0.2
        var room = SpaceArch()
        room.G = 16; room.K = 5; room.fgSigma = 0.15; room.bgSigma = 0.15
        room.zPresStartStep = 4000; room.zPresEndStep = 10000; room.zPresStartValue = 0.1; room.zPresEndValue = 0.01
        room.zScaleMeanStartStep = 10000; room.zScaleMeanEndStep = 20000
        room.zScaleMeanStartValue = -1.0; room.zScaleMeanEndValue = -2.0
        room.tauStartStep = 0; room.tauEndStep = 20000; room.tauStartValue = 2.5; room.tauEndValue = 0.5
        room.fixAlphaSteps = 0; room.fixAlphaValue = 0.1; room.boundaryLoss = true; room.blOffStep = 100_000
        return ["atari": atari, "room": room]
    }()
}

/// What `bench-step --json` writes.
struct BenchResult: Codable {
    var preset: String, mode: String, batch: Int, G: Int, K: Int, globalStep: Int, engine: String
    var stepSeconds: [Double], medianStepSeconds: Double, framesPerSecond: Double
    var phases: [String: [Double]]
    var cpuSecondsPerStep: [Double], stealFraction: Double
    var peakResidentBytes: Int, peakLiveTensorBytes: Int, arenaBytes: Int
    var bytesAllocatedPerStep: Int?
    var profile: [Profiler.Entry]?
}

/// Human-readable summaries of a profile: per op kind, per layer, and per convolution shape.
enum ProfileReport {
    static func lines(_ entries: [Profiler.Entry], stepSeconds: Double) -> [String] {
        var out: [String] = []
        let total = entries.reduce(0) { $0 + $1.seconds }
        func pct(_ s: Double) -> String { String(format: "%5.1f%%", 100 * s / max(stepSeconds, 1e-12)) }
        func row(_ name: String, _ f: Double, _ b: Double, _ flops: Double) -> String {
            let rate = flops > 0 ? String(format: " %7.1f GFLOP/s", flops / max(f + b, 1e-12) / 1e9) : ""
            return "  " + name.padding(toLength: 48, withPad: " ", startingAt: 0)
                + String(format: " fwd %8.1f ms  bwd %8.1f ms  %@", f * 1e3, b * 1e3, pct(f + b)) + rate
        }
        out.append(String(format: "profile: %.3f s charged to ops of a %.3f s step", total, stepSeconds))

        // Per op kind.
        out.append("by op (forward and backward, share of the step):")
        var byOp: [String: (Double, Double, Double)] = [:]
        for e in entries {
            var v = byOp[e.op] ?? (0, 0, 0)
            if e.phase == .forward { v.0 += e.seconds } else { v.1 += e.seconds }
            v.2 += e.flops
            byOp[e.op] = v
        }
        for (op, v) in byOp.sorted(by: { $0.value.0 + $0.value.1 > $1.value.0 + $1.value.1 }) where v.0 + v.1 >= 0.0005 {
            out.append(row(op, v.0, v.1, v.2))
        }

        // Per layer (top 40).
        out.append("by layer (top 40):")
        var byLayer: [String: (Double, Double, Double)] = [:]
        for e in entries {
            let layer = e.layer.isEmpty ? "(outside layers)" : e.layer
            var v = byLayer[layer] ?? (0, 0, 0)
            if e.phase == .forward { v.0 += e.seconds } else { v.1 += e.seconds }
            v.2 += e.flops
            byLayer[layer] = v
        }
        for (layer, v) in byLayer.sorted(by: { $0.value.0 + $0.value.1 > $1.value.0 + $1.value.1 }).prefix(40) {
            out.append(row(layer, v.0, v.1, v.2))
        }

        // Per convolution shape: forward, backward data and backward weights (a fused op's backward
        // charges its data and weight passes separately, "... data" / "... weights").
        out.append("convolutions by shape (N C HxW -> O kernel stride pad [algorithm formats]), GFLOP/s per pass:")
        struct Passes { var calls = 0; var t = [0.0, 0.0, 0.0]; var f = [0.0, 0.0, 0.0] }
        var byShape: [String: Passes] = [:]
        for e in entries where (e.op == "conv2d" || (e.op == "linear" && e.detail.contains("[dense"))) && !e.detail.isEmpty {
            var key = e.detail, pass = e.phase == .forward ? 0 : 1
            if key.hasSuffix(" data") { key.removeLast(5); pass = 1 }
            if key.hasSuffix(" weights") { key.removeLast(8); pass = 2 }
            var v = byShape[key] ?? Passes()
            if pass == 0 { v.calls += e.calls }
            if e.phase == .backward && pass == 1 && !e.detail.hasSuffix(" data") {
                // An unfused convolution's backward: data and weights together.
                v.t[1] += e.seconds; v.f[1] += e.flops
            } else {
                v.t[pass] += e.seconds; v.f[pass] += e.flops
            }
            byShape[key] = v
        }
        func rate(_ t: Double, _ f: Double) -> String { t > 0 && f > 0 ? String(format: "%6.1f", f / t / 1e9) : "     -" }
        for (shape, v) in byShape.sorted(by: { $0.value.t.reduce(0, +) > $1.value.t.reduce(0, +) }) {
            out.append("  " + shape.padding(toLength: 64, withPad: " ", startingAt: 0)
                       + String(format: " x%-2d fwd %6.1f ms %@  bwd-data %6.1f ms %@  bwd-weights %6.1f ms %@", v.calls,
                                v.t[0] * 1e3, rate(v.t[0], v.f[0]), v.t[1] * 1e3, rate(v.t[1], v.f[1]), v.t[2] * 1e3, rate(v.t[2], v.f[2])))
        }
        return out
    }
}

/// The process's peak resident set size (VmHWM), in bytes.
func peakResidentBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return 0 }
    let kb = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int($0) }.first ?? 0
    return kb * 1024
}

/// What the machine and this process spent: CPU time used and time the hypervisor took away.
struct MachineLoad {
    var total: Double, steal: Double

    /// The aggregate line of /proc/stat (zeros where unreadable).
    static func read() -> MachineLoad {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return MachineLoad(total: 0, steal: 0) }
        let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        // user nice system idle iowait irq softirq steal ...
        return MachineLoad(total: v.prefix(8).reduce(0, +), steal: v.count > 7 ? v[7] : 0)
    }

    func stealFraction(since start: MachineLoad) -> Double {
        let dt = total - start.total
        return dt > 0 ? (steal - start.steal) / dt : 0
    }

    /// User + system CPU seconds of this process so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func secs(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return secs(usage.ru_utime) + secs(usage.ru_stime)
    }
}
