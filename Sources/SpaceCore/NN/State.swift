// Saved state that is not a Float32 tensor, and the one type state dicts and safetensors files share.

/// Int64 values with a shape: PyTorch's int64 tensors (BatchNorm's `num_batches_tracked`, the parity
/// fixtures' `grad_idx.*` indices).
///
/// A reference type, like `Tensor`, so a module's int64 buffer can be updated in place (BatchNorm
/// increments its counter, `loadStateDict` copies into it) while the module keeps the same object.
/// Never differentiated.
public final class Int64Tensor: @unchecked Sendable, CustomStringConvertible {
    public let shape: [Int]
    /// Row-major values; `values.count` equals the product of `shape`.
    public var values: [Int64] {
        willSet { precondition(newValue.count == count, "Int64Tensor of shape \(shapeString(shape)) given \(newValue.count) values") }
    }

    /// `values` laid out row-major in `shape`.
    public init(_ values: [Int64], shape: [Int]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), values.count == shape.reduce(1, *) else {
            throw SpaceError.shape(op: "Int64Tensor.init", message: "\(values.count) values for shape \(shapeString(shape))")
        }
        self.shape = shape
        self.values = values
    }

    /// A 0-dimensional int64 tensor (PyTorch's `torch.tensor(0, dtype=torch.long)`).
    public init(scalar: Int64) {
        shape = []
        values = [scalar]
    }

    public var count: Int { shape.reduce(1, *) }

    /// A copy with its own values.
    public func clone() -> Int64Tensor { try! Int64Tensor(values, shape: shape) }

    /// The values as Float32 (exact up to 2^24 in magnitude).
    public func toFloat() -> Tensor { Tensor(shape: shape, storage: Storage(values.map { Float($0) })) }

    public var description: String {
        let head = values.prefix(8).map(String.init).joined(separator: ", ")
        return "Int64Tensor(\(shapeString(shape)), [\(head)\(count > 8 ? ", ..." : "")])"
    }
}

/// One entry of a state dict or safetensors file: a Float32 tensor or an int64 tensor.
///
/// SpaceCore computes in Float32 only; int64 is kept as its own case (not converted) so that
/// `num_batches_tracked` and index tensors round-trip through checkpoints bit for bit.
public enum StateValue: CustomStringConvertible {
    case float(Tensor)
    case int64(Int64Tensor)

    public var shape: [Int] {
        switch self {
        case .float(let t): return t.shape
        case .int64(let t): return t.shape
        }
    }

    /// The safetensors dtype this value is written as: "F32" or "I64".
    public var dtype: String {
        switch self {
        case .float: return "F32"
        case .int64: return "I64"
        }
    }

    /// The Float32 tensor, or nil for an int64 value.
    public var tensor: Tensor? {
        if case .float(let t) = self { return t }
        return nil
    }

    /// The int64 tensor, or nil for a Float32 value.
    public var int64Tensor: Int64Tensor? {
        if case .int64(let t) = self { return t }
        return nil
    }

    /// A copy that shares nothing with this value.
    public func clone() -> StateValue {
        switch self {
        case .float(let t): return .float(t.clone())
        case .int64(let t): return .int64(t.clone())
        }
    }

    public var description: String {
        switch self {
        case .float(let t): return t.description
        case .int64(let t): return t.description
        }
    }
}
