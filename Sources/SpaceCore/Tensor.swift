import CKernels

/// A Float32 tensor: a shape and contiguous row-major storage, plus what reverse-mode autograd needs.
///
/// Tensors are immutable values as far as ops are concerned: an op never writes into its inputs, it
/// returns a new tensor (reshape and detach share storage, which is safe for that reason). Only
/// optimizers and `copy(from:)` write into a tensor's storage in place, and only into leaves.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let storage: Storage
    /// Whether gradients flow into this tensor. Leaves with `requiresGrad` accumulate into `grad`.
    public var requiresGrad: Bool
    /// The accumulated gradient of a leaf after `backward()`; nil until then or after `zeroGrad()`.
    public var grad: Tensor?
    /// The op that produced this tensor while gradients were recorded (nil for leaves).
    internal var creator: GradNode?

    /// Wraps existing storage. `storage.count` must equal the product of `shape`.
    public init(shape: [Int], storage: Storage, requiresGrad: Bool = false) {
        precondition(storage.count == shape.reduce(1, *), "storage of \(storage.count) floats for shape \(shapeString(shape))")
        self.shape = shape
        self.storage = storage
        self.requiresGrad = requiresGrad
    }

    /// A tensor holding `values` laid out row-major in `shape`.
    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) throws {
        let n = shape.reduce(1, *)
        guard values.count == n, shape.allSatisfy({ $0 >= 0 }) else {
            throw SpaceError.shape(op: "Tensor.init", message: "\(values.count) values for shape \(shapeString(shape))")
        }
        self.init(shape: shape, storage: Storage(values), requiresGrad: requiresGrad)
    }

    /// A 0-dimensional tensor.
    public convenience init(scalar: Float, requiresGrad: Bool = false) {
        self.init(shape: [], storage: Storage([scalar]), requiresGrad: requiresGrad)
    }

    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, storage: Storage(count: shape.reduce(1, *), repeating: 0), requiresGrad: requiresGrad)
    }

    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, requiresGrad: requiresGrad)
    }

    public static func full(_ shape: [Int], _ value: Float, requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, storage: Storage(count: shape.reduce(1, *), repeating: value), requiresGrad: requiresGrad)
    }

    /// Values spaced evenly from `start` to `end` inclusive, as torch.linspace.
    public static func linspace(_ start: Float, _ end: Float, count: Int) -> Tensor {
        if count == 1 { return Tensor(shape: [1], storage: Storage([start])) }
        let step = (end - start) / Float(count - 1)
        // torch.linspace fills the first half from start and the second half from end, for symmetry.
        let half = count / 2
        let values = (0..<count).map { i in i < half ? start + step * Float(i) : end - step * Float(count - 1 - i) }
        return Tensor(shape: [count], storage: Storage(values))
    }

    /// 0, 1, ..., count-1.
    public static func arange(_ count: Int) -> Tensor {
        Tensor(shape: [count], storage: Storage((0..<count).map(Float.init)))
    }

    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    public var array: [Float] { storage.array }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }

    /// The single value of a one-element tensor.
    public func item() throws -> Float {
        guard count == 1 else { throw SpaceError.shape(op: "item", message: "tensor of shape \(shapeString(shape)) has \(count) elements, not 1") }
        return storage.pointer[0]
    }

    /// The same values, cut from the graph. Shares storage.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// A fresh copy with its own storage (not recorded).
    public func clone() -> Tensor {
        let s = Storage(count: count)
        s.pointer.update(from: storage.pointer, count: count)
        return Tensor(shape: shape, storage: s)
    }

    /// Overwrites this tensor's values in place (loading weights, optimizer steps). Not recorded.
    public func copy(from other: Tensor) throws {
        guard other.shape == shape else {
            throw SpaceError.shape(op: "copy", message: "source \(shapeString(other.shape)) into \(shapeString(shape))")
        }
        storage.pointer.update(from: other.storage.pointer, count: count)
    }

    /// Row-major strides in elements.
    public var strides: [Int] { Tensor.contiguousStrides(shape) }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) { s[d] = acc; acc *= shape[d] }
        return s
    }

    /// Normalises a possibly negative dimension index for a tensor of `rank` dims.
    public static func normalizeDim(_ dim: Int, rank: Int, op: String) throws -> Int {
        let d = dim < 0 ? dim + rank : dim
        guard d >= 0 && d < Swift.max(rank, 1) else {
            throw SpaceError.argument(op: op, message: "dimension \(dim) out of range for a tensor of rank \(rank)")
        }
        return d
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = array.prefix(8).map { String(format: "%.5g", $0) }.joined(separator: ", ")
        return "Tensor(\(shapeString(shape)), [\(head)\(count > 8 ? ", ..." : "")])"
    }
}

import Foundation
