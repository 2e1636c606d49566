/// Errors from loading, overriding or validating a `SpaceConfig`. Each message names the key (or the
/// file and line), what was expected and what was found. A command that fails with one of these exits
/// with status `exitCode` (2, the usage-error status).
public enum ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A key the config does not have. `suggestion` is the closest valid dotted key; `source` says where
    /// the key came from (`file:line:column` or `command line`).
    case unknownKey(key: String, suggestion: String?, source: String)
    /// A value that does not fit the key's type: `expected` describes the type, `value` is the text given.
    case typeMismatch(key: String, expected: String, value: String, source: String)
    /// Command-line overrides that do not come as KEY VALUE pairs.
    case oddOverrides(tokens: [String])
    /// YAML that libyaml cannot parse, or a document that is not a mapping of config keys (1-based
    /// line and column; 0 when unknown).
    case malformedYAML(source: String, line: Int, column: Int, message: String)
    /// A config file that cannot be read.
    case unreadableFile(path: String, reason: String)
    /// A value of the right type that is not allowed (found by `SpaceConfig.validate()`).
    case invalidValue(key: String, message: String)

    /// The process exit status for any config error: 2, as for a command-line usage error.
    public static let exitCode: Int32 = 2
    /// The process exit status for this error (always `ConfigError.exitCode`).
    public var exitCode: Int32 { Self.exitCode }

    public var description: String {
        switch self {
        case let .unknownKey(key, suggestion, source):
            return "\(source): unknown config key '\(key)'" + (suggestion.map { "; did you mean '\($0)'?" } ?? "")
        case let .typeMismatch(key, expected, value, source):
            return "\(source): config key '\(key)' expects \(expected), got '\(value)'"
        case let .oddOverrides(tokens):
            return "command-line overrides must be KEY VALUE pairs, got \(tokens.count) token\(tokens.count == 1 ? "" : "s"): "
                + tokens.map { "'\($0)'" }.joined(separator: " ")
        case let .malformedYAML(source, line, column, message):
            let position = line > 0 ? ":\(line):\(column)" : ""
            return "\(source)\(position): malformed YAML: \(message)"
        case let .unreadableFile(path, reason):
            return "\(path): cannot read config file: \(reason)"
        case let .invalidValue(key, message):
            return "config key '\(key)': \(message)"
        }
    }
}
