import SpaceCore

/// Which part of a dataset to read. The names are the reference's `mode` values; each layout maps
/// them to its own folder names (ATARI reads `val` from `validation`).
public enum DatasetSplit: String, Sendable, CaseIterable {
    case train, val, test
}

/// A finite, indexable set of scene images, all decoded to (3, size, size) Float32 tensors in [0, 1].
///
/// Implementations are immutable after construction, so `image(at:)` may be called from several loader
/// threads at once.
public protocol SceneDataset: AnyObject, Sendable {
    /// The config name of the layout ("ATARI", "OBJ3D_SMALL", ...).
    var name: String { get }
    var count: Int { get }
    /// The side of the square images `image(at:)` returns.
    var imageSize: Int { get }
    /// The file item `index` comes from, for messages.
    func path(at index: Int) -> String
    /// Item `index` as a (3, size, size) tensor. Throws `SpaceError.file` naming the file when it
    /// cannot be decoded (the loader skips such items).
    func image(at index: Int) throws -> Tensor
    /// Whether `boxes(at:)` has ground truth to give.
    var hasBoxes: Bool { get }
    /// Ground-truth boxes of item `index` in the OBJ3D convention: one `[center_x, center_y, width,
    /// height]` per object, in pixels of the 128-pixel image; nil when the dataset has none.
    func boxes(at index: Int) throws -> [[Float]]?
}

extension SceneDataset {
    public var hasBoxes: Bool { false }
    public func boxes(at index: Int) throws -> [[Float]]? { nil }

    func checkIndex(_ index: Int) throws {
        guard index >= 0 && index < count else {
            throw SpaceError.argument(op: "\(name) dataset", message: "index \(index) out of range 0..<\(count)")
        }
    }
}

/// What a dataset builder needs from the config.
public struct DatasetOptions: Sendable {
    /// The dataset's folder (the config's `dataset_roots.<NAME>`).
    public var root: String
    public var split: DatasetSplit
    /// ATARI only: the game folders to read (`gamelist`); nil reads every game folder under `root`.
    public var gamelist: [String]?
    public var preprocessing: ImagePreprocessing

    public init(root: String, split: DatasetSplit, gamelist: [String]? = nil,
                preprocessing: ImagePreprocessing = ImagePreprocessing()) {
        self.root = root
        self.split = split
        self.gamelist = gamelist
        self.preprocessing = preprocessing
    }
}

public typealias DatasetBuilder = @Sendable (DatasetOptions) throws -> any SceneDataset

/// Datasets by the config's `dataset` name. "ATARI", "OBJ3D_SMALL" and "OBJ3D_LARGE" are built in;
/// extensions register more names on `shared`.
public enum DatasetRegistry {
    public static let shared: Registry<DatasetBuilder> = {
        let registry = Registry<DatasetBuilder>(kind: "dataset")
        let builtIn: [(String, DatasetBuilder)] = [
            ("ATARI", { try AtariDataset(root: $0.root, split: $0.split, gamelist: $0.gamelist, preprocessing: $0.preprocessing) }),
            ("OBJ3D_SMALL", { try Obj3DDataset(root: $0.root, split: $0.split, preprocessing: $0.preprocessing, name: "OBJ3D_SMALL") }),
            ("OBJ3D_LARGE", { try Obj3DDataset(root: $0.root, split: $0.split, preprocessing: $0.preprocessing, name: "OBJ3D_LARGE") }),
        ]
        for (name, builder) in builtIn {
            do { try registry.register(name, builder) } catch { preconditionFailure("built-in dataset \(name): \(error)") }
        }
        return registry
    }()

    /// Builds the dataset registered as `name`.
    public static func make(_ name: String, options: DatasetOptions) throws -> any SceneDataset {
        try shared.builder(name)(options)
    }
}
