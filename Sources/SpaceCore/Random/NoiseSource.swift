import Foundation

/// Where every random draw of a model comes from.
///
/// Models never call a global generator: they ask the noise source they were given, naming each draw
/// (`"fg.z_what"`). A `SeededNoise` draws fresh values from a seed; a `ReplayNoise` hands back recorded
/// tensors by name, which is how the parity fixtures replay the reference's exact draws.
public protocol NoiseSource: AnyObject {
    /// Standard normal values of `shape` for the draw called `name`.
    func normal(_ shape: [Int], name: String) throws -> Tensor
    /// Uniform values in [0, 1) of `shape` for the draw called `name`.
    func uniform(_ shape: [Int], name: String) throws -> Tensor
}

/// A seeded pseudo-random source: xoshiro256** seeded through splitmix64; normals by Box-Muller.
public final class SeededNoise: NoiseSource, RandomNumberGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)
    private var spareNormal: Float?

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3; s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    public func nextUniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Standard normal (Box-Muller; the second value of each pair is kept for the next call).
    public func nextNormal() -> Float {
        if let z = spareNormal { spareNormal = nil; return z }
        var u1: Float
        repeat { u1 = nextUniform() } while u1 <= 0
        let u2 = nextUniform()
        let r = (-2 * Foundation.log(u1)).squareRoot()
        let theta = 2 * Float.pi * u2
        spareNormal = r * Foundation.sin(theta)
        return r * Foundation.cos(theta)
    }

    public func normal(_ shape: [Int], name: String = "") -> Tensor {
        let t = Tensor.zeros(shape)
        for i in 0..<t.count { t.pointer[i] = nextNormal() }
        return t
    }

    public func normal(_ shape: [Int]) -> Tensor { normal(shape, name: "") }

    public func uniform(_ shape: [Int], name: String = "") -> Tensor {
        let t = Tensor.zeros(shape)
        for i in 0..<t.count { t.pointer[i] = nextUniform() }
        return t
    }

    public func uniform(_ shape: [Int]) -> Tensor { uniform(shape, name: "") }

    /// Uniform in [lo, hi).
    public func uniform(_ shape: [Int], in range: ClosedRange<Float>) -> Tensor {
        uniform(shape).affine(scale: range.upperBound - range.lowerBound, shift: range.lowerBound)
    }
}

/// Replays recorded draws by name, checking each shape; a missing name or a shape that differs is an error.
public final class ReplayNoise: NoiseSource {
    private let recorded: [String: Tensor]
    /// Names in the order they were asked for (a test can compare it with the recorded order).
    public private(set) var requested: [String] = []

    /// `recorded` maps a draw's name (e.g. "fg.z_what") to its values.
    public init(_ recorded: [String: Tensor]) { self.recorded = recorded }

    private func take(_ shape: [Int], _ name: String) throws -> Tensor {
        requested.append(name)
        guard let t = recorded[name] else {
            throw SpaceError.argument(op: "ReplayNoise", message: "no recorded draw named '\(name)' (have: \(recorded.keys.sorted().joined(separator: ", ")))")
        }
        guard t.count == shape.reduce(1, *) else {
            throw SpaceError.shape(op: "ReplayNoise", message: "draw '\(name)' recorded as \(shapeString(t.shape)), asked for \(shapeString(shape))")
        }
        return try t.detached().reshape(shape)
    }

    public func normal(_ shape: [Int], name: String) throws -> Tensor { try take(shape, name) }
    public func uniform(_ shape: [Int], name: String) throws -> Tensor { try take(shape, name) }
}
