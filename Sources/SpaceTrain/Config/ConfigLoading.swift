import Foundation
import SpaceModels

// Loading follows the reference's yacs semantics:
// - every key in a file or an override must exist in the defaults (unknown keys are errors that suggest
//   the closest valid key); nested mappings merge key by key; lists replace lists;
// - a value must have the default's type, except that an integer is accepted where a float is expected;
// - scalars are typed against the schema, not by YAML 1.1's resolver: `lr: 1e-5` is the float 1e-05
//   (PyYAML reads it as a string, which yacs then turns into that float with literal_eval);
// - booleans are True/False in any case (also yes/no/on/off, as PyYAML reads them); a string key takes
//   any scalar's text (`exp_name 2` is the string '2'); a plain empty or null value is '' for a string;
// - overrides come as `KEY VALUE` pairs, each VALUE read as YAML (scalar or flow list); a Python tuple
//   such as `(64, 64)` is accepted for a list, as yacs accepts it.
// Loading only reads: nothing is written to disk.

extension SpaceConfig {
    // MARK: Loading

    /// The reference's `get_config`: the defaults, then `configFile` (if any) merged over them, then the
    /// `KEY VALUE` overrides. An empty `exp_name` becomes the config file's name without its extension
    /// (`configs/demo.yaml` gives `demo`); with no file it is an error, as in the reference.
    public static func load(configFile: String?, overrides: [String] = []) throws -> SpaceConfig {
        var cfg = SpaceConfig()
        let file = configFile.flatMap { $0.isEmpty ? nil : $0 }
        if let file { cfg = try cfg.merging(yamlFile: file) }
        if !overrides.isEmpty { cfg = try cfg.merging(overrides: overrides) }
        if cfg.expName.isEmpty {
            guard let file else {
                throw ConfigError.invalidValue(key: "exp_name", message: "cannot be empty without a config file: pass a config file or `exp_name NAME`")
            }
            cfg.expName = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        }
        return cfg
    }

    /// This config with the YAML file at `path` merged over it.
    public func merging(yamlFile path: String) throws -> SpaceConfig {
        guard FileManager.default.fileExists(atPath: path) else { throw ConfigError.unreadableFile(path: path, reason: "no such file") }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError.unreadableFile(path: path, reason: "\(error.localizedDescription)")
        }
        return try merging(yaml: text, source: path)
    }

    /// This config with the YAML `text` merged over it; `source` names the text in error messages.
    public func merging(yaml text: String, source: String = "<yaml>") throws -> SpaceConfig {
        guard let root = try YAMLReader.parse(text, source: source) else { return self }
        guard case .mapping = root else {
            throw ConfigError.malformedYAML(source: source, line: root.mark.line, column: root.mark.column,
                                            message: "the document must be a mapping of config keys, got \(root.summary)")
        }
        var tree = encodedTree()
        try Self.merge(root, into: &tree, type: Self.schema, key: "", source: source)
        return try Self.decode(tree)
    }

    /// This config with command-line overrides applied: `["train.batch_size", "8", "resume", "True"]`.
    /// Keys are dotted paths; values are YAML scalars or flow lists (`"[0, 1]"`, `"['Pong-v0']"`).
    public func merging(overrides tokens: [String]) throws -> SpaceConfig {
        guard tokens.count % 2 == 0 else { throw ConfigError.oddOverrides(tokens: tokens) }
        var tree = encodedTree()
        for i in stride(from: 0, to: tokens.count, by: 2) {
            let key = tokens[i], token = tokens[i + 1]
            let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            var type = Self.schema
            for part in path {
                guard let t = type.child(part) else {
                    throw ConfigError.unknownKey(key: key, suggestion: Self.closestKey(to: key), source: Self.commandLine)
                }
                type = t
            }
            let value = try Self.overrideValue(token, type: type, key: key)
            tree.set(value, at: path[...])
        }
        return try Self.decode(tree)
    }

    // MARK: Saving and comparing

    /// The resolved config as YAML: every key, in the reference's order, readable by `merging(yaml:)`
    /// (and by the reference's yacs). Floats always carry a '.', strings are single-quoted.
    public func yamlString() -> String {
        guard case .section(let root) = encodedTree() else { return "" }
        var out = ""
        func emit(_ section: ConfigSection, indent: String) {
            for key in section.keys {
                let value = section[key]!
                if case .section(let sub) = value, !sub.keys.isEmpty {
                    if indent.isEmpty && !out.isEmpty { out += "\n" }
                    out += indent + key + ":\n"
                    emit(sub, indent: indent + "  ")
                } else {
                    out += indent + key + ": " + value.yamlText + "\n"
                }
            }
        }
        emit(root, indent: "")
        return out
    }

    /// Every key whose value differs from `other`'s, in the reference's order: `old` is `other`'s value
    /// and `new` this config's, both as YAML text. Meant for "resuming with changed settings".
    public func differences(from other: SpaceConfig) -> [(key: String, old: String, new: String)] {
        let old = Dictionary(other.flattened(), uniquingKeysWith: { a, _ in a })
        return flattened().compactMap { key, new in
            let was = old[key] ?? ""
            return was == new ? nil : (key: key, old: was, new: new)
        }
    }

    /// Every leaf key (dotted, such as `train.solver.fg.lr`) in the reference's order.
    public static var allKeys: [String] {
        guard case .section(let root) = defaultTree else { return [] }
        return flatten(root, prefix: "").map(\.key)
    }

    // MARK: Validation

    /// Checks what the trainer, `eval` and `show` rely on; throws `ConfigError.invalidValue` naming the
    /// key. Refuses any device but the CPU: this build has no GPU support.
    public func validate() throws {
        func bad(_ key: String, _ message: String) -> ConfigError { .invalidValue(key: key, message: message) }
        let dev = device.trimmingCharacters(in: .whitespaces).lowercased()
        if dev.hasPrefix("cuda") || dev.hasPrefix("gpu") {
            throw bad("device", "'\(device)' asks for a GPU, but this build runs on CPU only: use `device cpu`")
        }
        guard dev == "cpu" || dev.hasPrefix("cpu:") else {
            throw bad("device", "unknown device '\(device)'; this build runs on CPU only: use `device cpu`")
        }
        if parallel { throw bad("parallel", "True needs several GPUs; this build runs on CPU: use `parallel False`") }

        func oneOf(_ key: String, _ value: String, _ allowed: [String]) throws {
            guard allowed.contains(value) else {
                throw bad(key, "must be one of \(allowed.map { "'\($0)'" }.joined(separator: ", ")) (got '\(value)')")
            }
        }
        func atLeast(_ key: String, _ value: Int, _ minimum: Int) throws {
            guard value >= minimum else { throw bad(key, "must be at least \(minimum) (got \(value))") }
        }
        try oneOf("train.solver.fg.optim", train.solver.fg.optim, ["RMSprop", "Adam"])
        try oneOf("train.solver.bg.optim", train.solver.bg.optim, ["RMSprop", "Adam"])
        for (name, o) in [("fg", train.solver.fg), ("bg", train.solver.bg)] {
            let key = "train.solver.\(name)"
            guard o.lr.isFinite, o.lr > 0 else { throw bad(key + ".lr", "must be a positive number (got \(o.lr))") }
            guard o.lrEnd.isFinite, o.lrEnd >= 0 else { throw bad(key + ".lr_end", "must be 0 (constant lr) or positive (got \(o.lrEnd))") }
            if o.lrEnd > 0 {
                try atLeast(key + ".lr_start_step", o.lrStartStep, 0)
                try atLeast(key + ".lr_end_step", o.lrEndStep, o.lrStartStep)
            }
        }
        guard train.clipNorm.isFinite, train.clipNorm >= 0 else { throw bad("train.clip_norm", "must be 0 (off) or positive (got \(train.clipNorm))") }
        try atLeast("train.batch_size", train.batchSize, 1)
        try atLeast("train.max_epochs", train.maxEpochs, 1)
        try atLeast("train.max_steps", train.maxSteps, 1)
        try atLeast("train.num_workers", train.numWorkers, 0)
        try atLeast("train.max_ckpt", train.maxCkpt, 1)
        try atLeast("train.print_every", train.printEvery, 1)
        try atLeast("train.save_every", train.saveEvery, 1)
        if train.evalOn { try atLeast("train.eval_every", train.evalEvery, 1) }
        try oneOf("eval.checkpoint", eval.checkpoint, ["best", "last"])
        try oneOf("eval.metric", eval.metric, ["ap_dot5", "ap_avg", "error_rate"])
        try oneOf("show.mode", show.mode, ["val", "test"])
        if let i = show.indices.first(where: { $0 < 0 }) { throw bad("show.indices", "indices must not be negative (got \(i))") }
        for m in evalCfg.train.metrics { try oneOf("eval_cfg.train.metrics", m, ["mse", "ap"]) }
        try atLeast("eval_cfg.train.num_samples.mse", evalCfg.train.numSamples.mse, 0)
        try atLeast("eval_cfg.train.num_samples.ap", evalCfg.train.numSamples.ap, 0)
        try atLeast("eval_cfg.train.batch_size", evalCfg.train.batchSize, 1)
        try atLeast("eval_cfg.train.num_workers", evalCfg.train.numWorkers, 0)
        try atLeast("eval_cfg.test.batch_size", evalCfg.test.batchSize, 1)
        try atLeast("eval_cfg.test.num_workers", evalCfg.test.numWorkers, 0)
        do { try arch.validate() } catch let SpaceModelError.config(key, message) {
            throw bad(key, message)
        }
    }

    // MARK: Paths

    /// `path` as an absolute path: relative paths resolve against `base` (the current working directory
    /// by default), as every path in a config does.
    public static func absolutePath(_ path: String, base: String = FileManager.default.currentDirectoryPath) -> String {
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : URL(fileURLWithPath: base).appendingPathComponent(path)
        return url.standardizedFileURL.path
    }

    /// `dataset_roots[dataset]`, or nil when `dataset` is not one of its keys.
    public var datasetRoot: String? { datasetRoots[dataset] }
    /// `logdir/exp_name`: the run's logs.
    public var logDirectory: String { Self.join(logdir, expName) }
    /// `checkpointdir/exp_name`: the run's checkpoints (and its saved config).
    public var checkpointDirectory: String { Self.join(checkpointdir, expName) }
    /// `evaldir/exp_name`: the `eval` task's results.
    public var evalDirectory: String { Self.join(evaldir, expName) }
    /// `demodir/exp_name.png`: the `show` task's image.
    public var demoImagePath: String { Self.join(demodir, expName + ".png") }

    // MARK: - Internals

    private static let commandLine = "command line"

    private static func join(_ dir: String, _ name: String) -> String {
        dir.isEmpty ? name : (dir.hasSuffix("/") ? dir + name : dir + "/" + name)
    }

    private static let defaultTree: ConfigValue = SpaceConfig().encodedTree()
    /// The type of every key, read off the defaults.
    static let schema = ConfigType(of: defaultTree)

    func encodedTree() -> ConfigValue {
        do { return try ConfigValueEncoder.encode(self) } catch {
            preconditionFailure("SpaceConfig failed to encode: \(error)")  // only plain values: cannot happen
        }
    }

    private static func decode(_ tree: ConfigValue) throws -> SpaceConfig {
        do { return try ConfigValueDecoder.decode(SpaceConfig.self, from: tree) } catch let e as DecodingError {
            // Values are typed against the schema before decoding, so this means the schema and the structs disagree.
            var key = "", message = "\(e)"
            switch e {
            case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c):
                key = c.codingPath.map(\.stringValue).joined(separator: ".")
                message = c.debugDescription
            @unknown default: break
            }
            throw ConfigError.invalidValue(key: key, message: message)
        }
    }

    private func flattened() -> [(key: String, value: String)] {
        guard case .section(let root) = encodedTree() else { return [] }
        return Self.flatten(root, prefix: "")
    }

    private static func flatten(_ section: ConfigSection, prefix: String) -> [(key: String, value: String)] {
        section.keys.flatMap { key -> [(key: String, value: String)] in
            let full = prefix.isEmpty ? key : prefix + "." + key
            if case .section(let sub) = section[key]! { return flatten(sub, prefix: full) }
            return [(key: full, value: section[key]!.yamlText)]
        }
    }

    private static func location(_ source: String, _ mark: YAMLMark) -> String { "\(source):\(mark.line):\(mark.column)" }

    /// Merges a YAML node into `value` (of type `type`, at dotted `key`).
    private static func merge(_ node: YAMLNode, into value: inout ConfigValue, type: ConfigType, key: String, source: String) throws {
        guard case .section = type else {
            value = try typed(node, as: type, key: key, source: location(source, node.mark))
            return
        }
        guard case .mapping(let pairs, _) = node, case .section(var section) = value else {
            throw ConfigError.typeMismatch(key: key, expected: type.name, value: node.summary, source: location(source, node.mark))
        }
        for (k, v) in pairs {
            let full = key.isEmpty ? k.text : key + "." + k.text
            guard let childType = type.child(k.text), var child = section[k.text] else {
                throw ConfigError.unknownKey(key: full, suggestion: closestKey(to: full), source: location(source, k.mark))
            }
            try merge(v, into: &child, type: childType, key: full, source: source)
            section[k.text] = child
        }
        value = .section(section)
    }

    /// A YAML value typed as `type` (not a section), or a type-mismatch error naming `key`.
    private static func typed(_ node: YAMLNode, as type: ConfigType, key: String, source: String) throws -> ConfigValue {
        let fail = ConfigError.typeMismatch(key: key, expected: type.name, value: node.summary, source: source)
        switch (type, node) {
        case (.list(let element), .sequence(let items, _)):
            return .list(try items.map { item in
                guard case .scalar(let s) = item, let v = scalar(s, as: element) else { throw fail }
                return v
            })
        case (_, .scalar(let s)):
            guard let v = scalar(s, as: type) else { throw fail }
            return v
        default:
            throw fail
        }
    }

    /// A scalar typed as `type`, or nil when it does not fit.
    private static func scalar(_ s: YAMLScalar, as type: ConfigType) -> ConfigValue? {
        switch type {
        case .string: return .string(s.isNull ? "" : s.text)
        case .bool: return parseBool(s.text).map(ConfigValue.bool)
        case .int: return parseInt(s.text).map(ConfigValue.int)
        case .float: return parseFloat(s.text).map(ConfigValue.float)
        case .list, .section: return nil
        }
    }

    /// One override value, read as YAML and typed as `type`.
    private static func overrideValue(_ token: String, type: ConfigType, key: String) throws -> ConfigValue {
        let fail = ConfigError.typeMismatch(key: key, expected: type.name, value: token, source: commandLine)
        if case .section = type {
            let example = type.dottedKeys(prefix: key).first ?? key
            throw ConfigError.typeMismatch(key: key, expected: "one of its keys to be set (e.g. `\(example) VALUE`), not a value for the whole section",
                                           value: token, source: commandLine)
        }
        var text = token.trimmingCharacters(in: .whitespaces)
        if case .list = type, text.hasPrefix("("), text.hasSuffix(")") {
            text = "[" + text.dropFirst().dropLast() + "]"  // a Python tuple, as yacs accepts
        }
        let node: YAMLNode?
        do { node = try YAMLReader.parse(text, source: commandLine) } catch {
            if case .string = type { return .string(token) }  // not YAML: the text as given, as yacs keeps it
            throw fail
        }
        guard let node else {
            if case .string = type { return .string("") }
            throw fail
        }
        if case .string = type {
            if case .scalar(let s) = node { return .string(s.isNull ? "" : s.text) }
            return .string(token)
        }
        do { return try typed(node, as: type, key: key, source: commandLine) } catch is ConfigError { throw fail }
    }

    static func parseBool(_ text: String) -> Bool? {
        switch text {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
        default: return nil
        }
    }

    /// Decimal (with `_` separators), `0x`, `0o` and `0b` integers, with an optional sign.
    static func parseInt(_ text: String) -> Int? {
        var t = Substring(text.replacingOccurrences(of: "_", with: ""))
        var sign = ""
        if let c = t.first, c == "-" || c == "+" { sign = c == "-" ? "-" : ""; t = t.dropFirst() }
        guard let first = t.first, first.isASCII, first.isNumber else { return nil }
        let lower = t.lowercased()
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where lower.hasPrefix(prefix) {
            return Int(sign + lower.dropFirst(2), radix: radix)
        }
        guard t.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(sign + t)
    }

    /// Integers, decimal floats with or without a '.' (`1e-5`, `0.15`, `.5`, `1.`), and `.inf` / `.nan`.
    static func parseFloat(_ text: String) -> Double? {
        if let i = parseInt(text) { return Double(i) }
        let t = text.replacingOccurrences(of: "_", with: "")
        switch t {
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .infinity
        case "-.inf", "-.Inf", "-.INF": return -.infinity
        case ".nan", ".NaN", ".NAN": return .nan
        default: break
        }
        let c = Array(t.utf8)
        var i = 0
        func digits() -> Int { let s = i; while i < c.count, c[i] >= 48, c[i] <= 57 { i += 1 }; return i - s }
        if i < c.count, c[i] == UInt8(ascii: "+") || c[i] == UInt8(ascii: "-") { i += 1 }
        var mantissa = digits()
        if i < c.count, c[i] == UInt8(ascii: ".") { i += 1; mantissa += digits() }
        guard mantissa > 0 else { return nil }
        if i < c.count, c[i] == UInt8(ascii: "e") || c[i] == UInt8(ascii: "E") {
            i += 1
            if i < c.count, c[i] == UInt8(ascii: "+") || c[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { return nil }
        }
        guard i == c.count else { return nil }
        return Double(t)
    }

    /// The valid dotted key closest to `key`: edit distance over the full key list, where a key whose
    /// last part matches closely also counts (so `batch_size` suggests `train.batch_size`).
    static func closestKey(to key: String) -> String? {
        let leaf = key.split(separator: ".").last.map(String.init) ?? key
        let parent = key.split(separator: ".").dropLast().joined(separator: ".")
        var best: (key: String, score: Int)?
        for candidate in schema.dottedKeys() {
            let candidateLeaf = candidate.split(separator: ".").last.map(String.init) ?? candidate
            // A leaf that matches in another section counts a little less than one in the key's own.
            let elsewhere = !parent.isEmpty && candidate.split(separator: ".").dropLast().joined(separator: ".") != parent ? 1 : 0
            let score = min(editDistance(key, candidate), editDistance(leaf, candidateLeaf) + 2 + elsewhere)
            if best == nil || score < best!.score { best = (candidate, score) }
        }
        return best?.key
    }

    /// Levenshtein distance.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var previous = Array(0...y.count), current = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            current[0] = i
            for j in 1...y.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[y.count]
    }
}

extension ConfigValue {
    /// Replaces the value at a dotted path (every part but the last must name a section).
    mutating func set(_ newValue: ConfigValue, at path: ArraySlice<String>) {
        guard let first = path.first else { self = newValue; return }
        guard case .section(var section) = self, var child = section[first] else { return }
        child.set(newValue, at: path.dropFirst())
        section[first] = child
        self = .section(section)
    }
}
