import SpaceCore

/// Everything one forward pass of SPACE produces: the loss and the reference's per-image log values.
public struct SpaceOutput {
    /// mean over the batch of (-ELBO + boundary loss): the scalar that is minimised.
    public var loss: Tensor
    /// Per image (B): ELBO, mixture log-likelihood, KL terms, boundary loss and squared error.
    public var elbo: Tensor, logLike: Tensor, klBg: Tensor, klFg: Tensor, boundaryLoss: Tensor, mse: Tensor
    /// The reconstruction alpha * fg + (1 - alpha) * bg, (B, 3, H, W).
    public var y: Tensor
    public var foreground: ForegroundOutput
    public var background: BackgroundOutput

    /// The values the reference logs, under its names (`y`, `fg`, `bg`, `alpha_map`, `z_pres`, ...).
    public var logValues: [String: Tensor] {
        let f = foreground
        return ["y": y, "fg": f.fg, "bg": background.bg, "alpha_map": f.alphaMap, "z_pres": f.zPres,
                "z_pres_prob": f.zPresProb, "z_where": f.zWhere, "z_what": f.zWhat, "z_depth": f.zDepth,
                "z_scale": f.zScale, "z_shift": f.zShift,
                "masks": background.masks, "comps": background.comps,
                "kl_z_what": f.klZWhat, "kl_z_where": f.klZWhere, "kl_z_pres": f.klZPres, "kl_z_depth": f.klZDepth,
                "kl_bg": klBg, "boundary_loss": boundaryLoss, "log_like": logLike, "mse": mse,
                "elbo": elbo, "loss": loss]
    }
}

/// SPACE: a foreground of objects on a grid and a background of K components, trained as one ELBO.
/// Parameter keys are the reference's (`fg_module.img_encoder.enc.0.weight`, `bg_module.rnn_mask.weight_ih`).
public final class Space: Module {
    @StateKey("fg_module") public var fgModule: SpaceForeground
    @StateKey("bg_module") public var bgModule: SpaceBackground
    public let arch: SpaceArch

    public init(arch: SpaceArch, foreground: SpaceForeground? = nil, background: SpaceBackground? = nil) throws {
        try arch.validate()
        self.arch = arch
        super.init()
        fgModule = foreground ?? SpaceForeground(arch: arch)
        bgModule = background ?? SpaceBackground(arch: arch)
    }

    /// One forward pass at `globalStep` (it drives the annealing, the fix-alpha warm-up and bl_off_step).
    /// x: (B, 3, H, W) in [0, 1]. The background draws its noise first, as in the reference.
    public func callAsFunction(_ x: Tensor, globalStep: Int, noise: NoiseSource) throws -> SpaceOutput {
        guard x.rank == 4, x.shape[1] == 3, x.shape[2] == arch.imgShape[0], x.shape[3] == arch.imgShape[1] else {
            throw SpaceError.shape(op: "Space", message: "input \(shapeString(x.shape)), expected (B, 3, \(arch.imgShape[0]), \(arch.imgShape[1]))")
        }
        let bg = try Profiler.scope(bgModule) { try bgModule(x, globalStep: globalStep, noise: noise) }
        let fg = try Profiler.scope(fgModule) { try fgModule(x, globalStep: globalStep, noise: noise) }

        // Fix-alpha warm-up: alpha held constant for the first steps (the reference skips step 0).
        var alpha = fg.alphaMap
        if globalStep != 0 && globalStep < arch.fixAlphaSteps {
            alpha = Tensor.full(alpha.shape, arch.fixAlphaValue)
        }
        let fgLike = try fg.likelihood + (alpha + 1e-5).log()
        let bgLike = try bg.likelihood + ((1 - alpha) + 1e-5).log()
        let logLike = try Tensor.stack([fgLike, bgLike], dim: 1).logsumexp(dim: 1).flatten(start: 1).sum(dim: 1)
        let y = try alpha * fg.fg + (1 - alpha) * bg.bg
        let elbo = try logLike - bg.kl - fg.kl
        let loss = try (fg.boundaryLoss - elbo).mean()
        let mse = try (y - x).square().flatten(start: 1).sum(dim: 1)
        return SpaceOutput(loss: loss, elbo: elbo, logLike: logLike, klBg: bg.kl, klFg: fg.kl, boundaryLoss: fg.boundaryLoss,
                           mse: mse, y: y, foreground: fg, background: bg)
    }

    /// Parameters of the foreground (`fg_module.*`) and background (`bg_module.*`), for their two optimizers.
    public func parameterGroups() -> (fg: [(String, Tensor)], bg: [(String, Tensor)]) {
        let all = namedParameters().filter { $0.1.requiresGrad }
        return (all.filter { $0.0.hasPrefix("fg_module.") }, all.filter { $0.0.hasPrefix("bg_module.") })
    }
}
