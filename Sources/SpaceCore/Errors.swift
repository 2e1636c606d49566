/// Errors thrown by SpaceCore. Every message names the op or file and the shapes involved.
public enum SpaceError: Error, CustomStringConvertible, Equatable {
    /// An op got tensors whose shapes do not fit: `op`, then what is wrong.
    case shape(op: String, message: String)
    /// An invalid argument (index out of range, bad dimension, ...).
    case argument(op: String, message: String)
    /// A file could not be read or is malformed: path and reason.
    case file(path: String, message: String)
    /// A parameter key is missing, unexpected, or has the wrong shape.
    case parameter(key: String, message: String)
    /// Anything else, with a message.
    case message(String)

    public var description: String {
        switch self {
        case .shape(let op, let m): return "\(op): shape mismatch: \(m)"
        case .argument(let op, let m): return "\(op): invalid argument: \(m)"
        case .file(let path, let m): return "\(path): \(m)"
        case .parameter(let key, let m): return "parameter '\(key)': \(m)"
        case .message(let m): return m
        }
    }
}

/// Formats a shape as PyTorch prints it: [2, 3, 4].
@inlinable public func shapeString(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }
