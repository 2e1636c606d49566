import Foundation

/// A name-keyed table of builders: how models, datasets and other plugins are found from a config name.
///
/// Registering a name twice is an error (two plugins cannot silently shadow each other); asking for a
/// name that is not there lists the names that are.
public final class Registry<Builder>: @unchecked Sendable {
    public let kind: String
    private var builders: [String: Builder] = [:]
    private let lock = NSLock()

    /// `kind` names what is registered ("model", "dataset"), for error messages.
    public init(kind: String) { self.kind = kind }

    public func register(_ name: String, _ builder: Builder) throws {
        lock.lock(); defer { lock.unlock() }
        guard builders[name] == nil else {
            throw SpaceError.argument(op: "\(kind) registry", message: "'\(name)' is already registered")
        }
        builders[name] = builder
    }

    /// The builder registered under `name`.
    public func builder(_ name: String) throws -> Builder {
        lock.lock(); defer { lock.unlock() }
        guard let b = builders[name] else {
            throw SpaceError.argument(op: "\(kind) registry",
                                      message: "unknown \(kind) '\(name)'; registered: \(builders.keys.sorted().joined(separator: ", "))")
        }
        return b
    }

    public var names: [String] { lock.lock(); defer { lock.unlock() }; return builders.keys.sorted() }
    public func contains(_ name: String) -> Bool { lock.lock(); defer { lock.unlock() }; return builders[name] != nil }
}
