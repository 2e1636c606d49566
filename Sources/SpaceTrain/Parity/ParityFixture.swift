import Foundation
import SpaceCore
import SpaceModels

/// A recorded reference training step (the format of the shared parity fixtures): `meta.json` with the
/// arch and train settings, `weights.safetensors` (the state dict) and `expected.safetensors` (input,
/// every noise draw, outputs, sampled gradients after clipping, and parameters after one step).
public struct ParityFixture {
    public let directory: String
    public let arch: SpaceArch
    public let globalStep: Int
    public let clipNorm: Float
    public let fgOptimizer: (name: String, lr: Float)
    public let bgOptimizer: (name: String, lr: Float)
    /// Whether the step was recorded in training mode (BatchNorm batch statistics); default true.
    public let training: Bool
    public let weights: SafeTensors
    public let expected: SafeTensors

    public init(directory: String) throws {
        self.directory = directory
        let metaPath = (directory as NSString).appendingPathComponent("meta.json")
        guard let data = FileManager.default.contents(atPath: metaPath) else {
            throw SpaceError.file(path: metaPath, message: "cannot read the fixture's meta.json")
        }
        guard let meta = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SpaceError.file(path: metaPath, message: "not a JSON object")
        }
        guard let archObject = meta["arch"], let step = meta["global_step"] as? Int,
              let train = meta["train"] as? [String: Any] else {
            throw SpaceError.file(path: metaPath, message: "needs 'arch', 'global_step' and 'train'")
        }
        do {
            arch = try JSONDecoder().decode(SpaceArch.self, from: JSONSerialization.data(withJSONObject: archObject))
        } catch {
            throw SpaceError.file(path: metaPath, message: "bad 'arch': \(error)")
        }
        globalStep = step
        clipNorm = Float((train["clip_norm"] as? Double) ?? 0)
        func optim(_ key: String, _ defaultName: String, _ defaultLR: Double) -> (String, Float) {
            let o = train[key] as? [String: Any]
            return ((o?["optim"] as? String) ?? defaultName, Float((o?["lr"] as? Double) ?? defaultLR))
        }
        fgOptimizer = optim("fg", "RMSprop", 1e-5)
        bgOptimizer = optim("bg", "Adam", 1e-3)
        if let mode = meta["mode"] as? String { training = mode != "eval" }
        else if let t = meta["training"] as? Bool { training = t }
        else { training = true }
        weights = try SafeTensors.load(path: (directory as NSString).appendingPathComponent("weights.safetensors"))
        expected = try SafeTensors.load(path: (directory as NSString).appendingPathComponent("expected.safetensors"))
    }

    /// The recorded draws, keyed by the names the model asks for ("fg.z_what").
    public func replayNoise() -> ReplayNoise {
        var draws: [String: Tensor] = [:]
        for (k, v) in expected.values where k.hasPrefix("noise.") {
            if let t = v.tensor { draws[String(k.dropFirst("noise.".count))] = t }
        }
        return ReplayNoise(draws)
    }

    /// The result of replaying the step with our model.
    public struct Result {
        public let rows: [ParityRow]
        public var passed: Bool { rows.allSatisfy { $0.passed } }
        public let forwardSeconds: Double
        public let backwardSeconds: Double
    }

    /// Replays the step: load weights, forward with the recorded noise, backward, clip, one step of
    /// each optimizer; compares everything with the recording.
    public func run(tolerances: ParityTolerances = ParityTolerances()) throws -> Result {
        let model = try Space(arch: arch)
        try model.loadStateDict(weights.values)
        if training { model.train() } else { model.eval() }
        let input = try expected.tensor("input")
        let noise = replayNoise()

        let t0 = DispatchTime.now().uptimeNanoseconds
        let out = try model(input, globalStep: globalStep, noise: noise)
        let t1 = DispatchTime.now().uptimeNanoseconds
        try out.loss.backward()
        let t2 = DispatchTime.now().uptimeNanoseconds

        var rows: [ParityRow] = []
        let params = model.namedParameters()
        var normBefore: Float = 0
        if clipNorm > 0 { normBefore = clipGradNorm(params.map { $0.1 }, maxNorm: clipNorm) }
        if let ref = try? expected.tensor("grad_total_norm_before_clip") {
            let r = Double(ref.pointer[0]), tol = tolerances.gradRelative * r + tolerances.gradClipAbsolute * Double(clipNorm)
            let e = abs(Double(normBefore) - r)
            rows.append(ParityRow(kind: .gradient, name: "(global norm before clipping)", worstError: e, tolerance: tol, passed: e <= tol, note: ""))
        }
        var grads: [String: Tensor] = [:]
        for (k, p) in params { if let g = p.grad { grads[k] = g.clone() } }

        let groups = model.parameterGroups()
        try makeOptimizer(name: fgOptimizer.name, learningRate: fgOptimizer.lr).step(groups.fg)
        try makeOptimizer(name: bgOptimizer.name, learningRate: bgOptimizer.lr).step(groups.bg)
        var after: [String: Tensor] = [:]
        for (k, p) in params { after[k] = p }

        var outputs = out.logValues
        outputs["loss"] = try out.loss.reshape([1])
        let exp = expected
        rows += ParityCheck().compare(
            clipNorm: Double(clipNorm),
            expected: { try? exp.tensor($0) },
            indices: { name in (try? exp.int64(name)).map { $0.values.map { Int($0) } } },
            parameterNames: params.map { $0.0 },
            outputs: outputs.filter { exp["out." + $0.key] != nil },
            gradients: grads, afterStep: after)
        // Every recorded output must have been produced.
        for k in exp.keys where k.hasPrefix("out.") && outputs[String(k.dropFirst(4))] == nil {
            rows.append(ParityRow(kind: .output, name: String(k.dropFirst(4)), worstError: .infinity, tolerance: 0, passed: false, note: "not produced"))
        }
        return Result(rows: rows, forwardSeconds: Double(t1 - t0) * 1e-9, backwardSeconds: Double(t2 - t1) * 1e-9)
    }
}
