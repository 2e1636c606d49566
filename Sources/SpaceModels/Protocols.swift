import SpaceCore

// The parts of SPACE a plugin can swap. Each is a `Module` (so its parameters and buffers are found,
// named and saved like the built-in ones) that also conforms to one of these protocols. SPACE's own
// parts (`SpaceImageEncoderFg`, `SpaceGlimpseEncoder`, ...) are the reference implementations; a
// variant registers a builder under a config name in `ModelRegistry` and hands its parts to
// `SpaceForeground` / `SpaceBackground`, and the trainer never needs to know.
//
// Layouts are NCHW; B is the image batch, G the grid size, N = B*G*G the number of cells/glimpses,
// K the number of background components.

/// Image (B, 3, H, W) -> per-cell latents z_pres, z_depth, z_where (each (B, G*G, D)) and their
/// posteriors. Draws its noise from `noise` under the names "fg.z_pres", "fg.z_depth",
/// "fg.z_scale", "fg.z_shift".
public protocol ForegroundImageEncoder: Module {
    func callAsFunction(_ x: Tensor, tau: Float, noise: NoiseSource) throws -> CellLatents
}

/// Glimpses (N, 3, g, g) -> a z_what sample (N, D) and its posterior; noise name "fg.z_what".
public protocol GlimpseEncoder: Module {
    func callAsFunction(_ glimpses: Tensor, noise: NoiseSource) throws -> (Tensor, Normal)
}

/// z_what (N, D) -> RGB glimpses (N, 3, g, g) in (0, 1) and alpha masks (N, 1, g, g) in (0, 1).
public protocol GlimpseDecoder: Module {
    func callAsFunction(_ zWhat: Tensor) throws -> (Tensor, Tensor)
}

/// Image (B, 3, H, W) -> a feature vector (B, D) for the background's mask RNN.
public protocol BackgroundImageEncoder: Module {
    func callAsFunction(_ x: Tensor) throws -> Tensor
}

/// A hidden state or latent (B, D) -> the loc and scale (each (B, L)) of a Normal: the mask posterior
/// and prior heads and the component prior.
public protocol LatentPredictor: Module {
    func callAsFunction(_ h: Tensor) throws -> (Tensor, Tensor)
}

/// z_mask (B, L) -> mask (B, 1, H, W) in (0, 1) (before stick-breaking).
public protocol MaskDecoder: Module {
    func callAsFunction(_ zMask: Tensor) throws -> Tensor
}

/// log-mask and image concatenated (B*K, 4, H, W) -> loc and scale (each (B*K, L)) of z_comp.
public protocol ComponentEncoder: Module {
    func callAsFunction(_ x: Tensor) throws -> (Tensor, Tensor)
}

/// z_comp (B*K, L) -> component images (B*K, 3, H, W) in (0, 1).
public protocol ComponentDecoder: Module {
    func callAsFunction(_ zComp: Tensor) throws -> Tensor
}
