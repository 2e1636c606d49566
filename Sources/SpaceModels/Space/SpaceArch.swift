import Foundation

/// The `arch` section of a SPACE config: every architectural and prior setting, with the reference's
/// defaults (its `model/space/arch.py`) and key names, so YAML files and `arch.KEY VALUE` overrides map
/// one to one.
public struct SpaceArch: Codable, Equatable, Sendable {
    public var imgShape: [Int] = [128, 128]
    /// Grid size G of the foreground: G x G cells (4, 8 or 16).
    public var G: Int = 8
    public var fgSigma: Float = 0.15
    public var glimpseSize: Int = 32
    public var imgEncDimFg: Int = 128
    public var zPresDim: Int = 1
    public var zDepthDim: Int = 1
    public var zWhereScaleDim: Int = 2
    public var zWhereShiftDim: Int = 2
    public var zWhatDim: Int = 32

    public var zPresStartStep: Int = 4000
    public var zPresEndStep: Int = 10000
    public var zPresStartValue: Float = 0.1
    public var zPresEndValue: Float = 0.01

    public var zScaleMeanStartStep: Int = 10000
    public var zScaleMeanEndStep: Int = 20000
    public var zScaleMeanStartValue: Float = -1.0
    public var zScaleMeanEndValue: Float = -2.0
    public var zScaleStdValue: Float = 0.1

    public var tauStartStep: Int = 0
    public var tauEndStep: Int = 10000
    public var tauStartValue: Float = 2.5
    public var tauEndValue: Float = 2.5

    public var boundaryLoss: Bool = true
    public var blOffStep: Int = 100_000_000

    public var fixAlphaSteps: Int = 0
    public var fixAlphaValue: Float = 0.1

    /// Number of background components K.
    public var K: Int = 5
    public var bgSigma: Float = 0.15
    public var imgEncDimBg: Int = 64
    public var zMaskDim: Int = 32
    public var zCompDim: Int = 32
    public var rnnMaskHiddenDim: Int = 64
    public var rnnMaskPriorHiddenDim: Int = 64
    public var predictCompHiddenDim: Int = 64

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case imgShape = "img_shape", G, fgSigma = "fg_sigma", glimpseSize = "glimpse_size"
        case imgEncDimFg = "img_enc_dim_fg", zPresDim = "z_pres_dim", zDepthDim = "z_depth_dim"
        case zWhereScaleDim = "z_where_scale_dim", zWhereShiftDim = "z_where_shift_dim", zWhatDim = "z_what_dim"
        case zPresStartStep = "z_pres_start_step", zPresEndStep = "z_pres_end_step"
        case zPresStartValue = "z_pres_start_value", zPresEndValue = "z_pres_end_value"
        case zScaleMeanStartStep = "z_scale_mean_start_step", zScaleMeanEndStep = "z_scale_mean_end_step"
        case zScaleMeanStartValue = "z_scale_mean_start_value", zScaleMeanEndValue = "z_scale_mean_end_value"
        case zScaleStdValue = "z_scale_std_value"
        case tauStartStep = "tau_start_step", tauEndStep = "tau_end_step"
        case tauStartValue = "tau_start_value", tauEndValue = "tau_end_value"
        case boundaryLoss = "boundary_loss", blOffStep = "bl_off_step"
        case fixAlphaSteps = "fix_alpha_steps", fixAlphaValue = "fix_alpha_value"
        case K, bgSigma = "bg_sigma", imgEncDimBg = "img_enc_dim_bg", zMaskDim = "z_mask_dim", zCompDim = "z_comp_dim"
        case rnnMaskHiddenDim = "rnn_mask_hidden_dim", rnnMaskPriorHiddenDim = "rnn_mask_prior_hidden_dim"
        case predictCompHiddenDim = "predict_comp_hidden_dim"
    }

    /// Decodes with every key optional (missing keys keep their defaults).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func get<T: Decodable>(_ k: CodingKeys, _ v: inout T) throws { if let x = try c.decodeIfPresent(T.self, forKey: k) { v = x } }
        try get(.imgShape, &imgShape); try get(.G, &G); try get(.fgSigma, &fgSigma); try get(.glimpseSize, &glimpseSize)
        try get(.imgEncDimFg, &imgEncDimFg); try get(.zPresDim, &zPresDim); try get(.zDepthDim, &zDepthDim)
        try get(.zWhereScaleDim, &zWhereScaleDim); try get(.zWhereShiftDim, &zWhereShiftDim); try get(.zWhatDim, &zWhatDim)
        try get(.zPresStartStep, &zPresStartStep); try get(.zPresEndStep, &zPresEndStep)
        try get(.zPresStartValue, &zPresStartValue); try get(.zPresEndValue, &zPresEndValue)
        try get(.zScaleMeanStartStep, &zScaleMeanStartStep); try get(.zScaleMeanEndStep, &zScaleMeanEndStep)
        try get(.zScaleMeanStartValue, &zScaleMeanStartValue); try get(.zScaleMeanEndValue, &zScaleMeanEndValue)
        try get(.zScaleStdValue, &zScaleStdValue)
        try get(.tauStartStep, &tauStartStep); try get(.tauEndStep, &tauEndStep)
        try get(.tauStartValue, &tauStartValue); try get(.tauEndValue, &tauEndValue)
        try get(.boundaryLoss, &boundaryLoss); try get(.blOffStep, &blOffStep)
        try get(.fixAlphaSteps, &fixAlphaSteps); try get(.fixAlphaValue, &fixAlphaValue)
        try get(.K, &K); try get(.bgSigma, &bgSigma); try get(.imgEncDimBg, &imgEncDimBg)
        try get(.zMaskDim, &zMaskDim); try get(.zCompDim, &zCompDim)
        try get(.rnnMaskHiddenDim, &rnnMaskHiddenDim); try get(.rnnMaskPriorHiddenDim, &rnnMaskPriorHiddenDim)
        try get(.predictCompHiddenDim, &predictCompHiddenDim)
    }

    /// Checks the settings the architecture depends on; throws naming the key.
    public func validate() throws {
        func bad(_ key: String, _ why: String) -> Error { SpaceModelError.config(key: "arch." + key, message: why) }
        guard [4, 8, 16].contains(G) else { throw bad("G", "must be 4, 8 or 16 (got \(G))") }
        guard imgShape.count == 2, imgShape[0] > 0, imgShape[0] % 16 == 0, imgShape[1] == imgShape[0] else {
            throw bad("img_shape", "must be square with a side divisible by 16 (got \(imgShape))")
        }
        guard K >= 1 else { throw bad("K", "must be at least 1 (got \(K))") }
        guard glimpseSize == 32 else { throw bad("glimpse_size", "the glimpse encoder and decoder are built for 32 (got \(glimpseSize))") }
        guard zPresDim == 1, zDepthDim == 1, zWhereScaleDim == 2, zWhereShiftDim == 2 else {
            throw bad("z_pres_dim/z_depth_dim/z_where_*_dim", "SPACE uses 1, 1, 2, 2")
        }
        guard fgSigma > 0, bgSigma > 0 else { throw bad("fg_sigma/bg_sigma", "must be positive") }
        for (k, v) in [("img_enc_dim_fg", imgEncDimFg)] where v % 16 != 0 { throw bad(k, "must be a multiple of 16 (GroupNorm(16, ...)), got \(v)") }
    }
}

/// Errors of model construction and configuration.
public enum SpaceModelError: Error, CustomStringConvertible {
    case config(key: String, message: String)
    case unknown(kind: String, name: String, known: [String])

    public var description: String {
        switch self {
        case .config(let key, let m): return "config key '\(key)': \(m)"
        case .unknown(let kind, let name, let known): return "unknown \(kind) '\(name)'; registered: \(known.sorted().joined(separator: ", "))"
        }
    }
}

/// Linear annealing of a value with the global step, as the reference's `linear_annealing`:
/// start value up to and including `startStep`, end value from `endStep` on, linear in between.
public func linearAnnealing(step: Int, startStep: Int, endStep: Int, startValue: Float, endValue: Float) -> Float {
    if step <= startStep { return startValue }
    if step < endStep {
        // Same arithmetic order as the reference (in Python doubles, then stored as float32).
        let slope = (Double(endValue) - Double(startValue)) / Double(endStep - startStep)
        return Float(Double(startValue) + slope * Double(step - startStep))
    }
    return endValue
}
