// PyTorch's default parameter initialisation, drawn from a SeededNoise.

/// Where layers draw their initial weights from.
///
/// Every layer initialiser takes a `noise:` argument; when it is omitted they share
/// `ParameterInit.defaultNoise`, a `SeededNoise` seeded with 0 that advances with each layer built.
/// Building the same model twice in a fresh process (or after `reseed`) therefore gives the same
/// weights, and two layers of the same shape still get different ones, as with torch's default generator.
/// The values are not torch's (its generator is a different algorithm); parity runs load the
/// reference's weights instead.
public enum ParameterInit {
    /// The shared default source of initial weights.
    nonisolated(unsafe) public static var defaultNoise = SeededNoise(seed: 0)

    /// Restarts the default source from `seed`.
    public static func reseed(_ seed: UInt64) { defaultNoise = SeededNoise(seed: seed) }

    /// A trainable tensor of `shape` with entries drawn from U(-bound, bound).
    public static func uniform(_ shape: [Int], bound: Float, noise: SeededNoise) -> Tensor {
        let t = noise.uniform(shape).affine(scale: 2 * bound, shift: -bound)
        return Tensor(shape: shape, storage: t.storage, requiresGrad: true)
    }

    /// PyTorch's default for Linear and Conv weights and biases: kaiming_uniform_(a = sqrt(5)) is
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias uses the same bound. 0 when fan_in is 0.
    public static func defaultBound(fanIn: Int) -> Float {
        fanIn > 0 ? 1 / Float(fanIn).squareRoot() : 0
    }
}

