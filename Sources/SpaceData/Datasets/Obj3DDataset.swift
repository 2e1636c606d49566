import SpaceCore

/// The OBJ3D layout (OBJ3D_SMALL, OBJ3D_LARGE): `root/<split>/<N>-<anything>.png` with split folders
/// `train`, `val`, `test`, and ground truth in `root/<split>/bb/bb_<i>.txt`.
///
/// As the reference: the items are the files of the split folder whose name contains "png" or "jpg",
/// ordered by the integer `N` before the first "-" of the name; images are read as RGB (alpha
/// dropped). Box file `bb_<i>.txt` belongs to the i-th item in that order (the reference pairs them by
/// position), one object per non-blank line: `center_x, center_y, width, height` in pixels of the
/// 128-pixel image (see `GroundTruthBoxes`).
///
/// Differences: ties in `N` are ordered by name (the reference keeps the file system's order); a name
/// whose prefix is not an integer, a missing split folder and an empty split are errors naming the
/// path; the substring test looks at the file name, not the whole path; images that are not
/// 128 x 128 are resized to 128 x 128 with PIL's bilinear filter (torchvision's `Resize(128)` would
/// keep the aspect ratio of non-square images and give tensors the model cannot take; for square
/// images both agree, and 128 x 128 images are used as stored).
public final class Obj3DDataset: SceneDataset {
    public let name: String
    public let root: String
    public let split: DatasetSplit
    /// File names in the split folder, in dataset order.
    public let files: [String]
    public let preprocessing: ImagePreprocessing

    public init(root: String, split: DatasetSplit, preprocessing: ImagePreprocessing = ImagePreprocessing(),
                name: String = "OBJ3D_SMALL") throws {
        self.name = name
        self.root = root
        self.split = split
        self.preprocessing = preprocessing
        guard FolderListing.isDirectory(root) else { throw SpaceError.file(path: root, message: "\(name) dataset folder does not exist") }
        let dir = root + "/" + split.rawValue
        let names = try FolderListing.files(dir, what: "\(name) '\(split.rawValue)' split").filter { $0.contains("png") || $0.contains("jpg") }
        guard !names.isEmpty else { throw SpaceError.file(path: dir, message: "\(name) '\(split.rawValue)' split has no images") }
        var keyed: [(n: Int, name: String)] = []
        for file in names {
            let prefix = file.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)[0]
            guard let n = Int(prefix) else {
                throw SpaceError.file(path: dir + "/" + file, message: "image name does not start with an integer index followed by '-'")
            }
            keyed.append((n, file))
        }
        keyed.sort { $0.n != $1.n ? $0.n < $1.n : FolderListing.codePointLess($0.name, $1.name) }
        self.files = keyed.map(\.name)
    }

    public var count: Int { files.count }
    public var imageSize: Int { preprocessing.size }

    public func path(at index: Int) -> String { root + "/" + split.rawValue + "/" + files[index] }

    /// `root/<split>/bb`.
    public var boxDirectory: String { root + "/" + split.rawValue + "/bb" }

    public var hasBoxes: Bool { FolderListing.isDirectory(boxDirectory) }

    public func image(at index: Int) throws -> Tensor {
        try checkIndex(index)
        return try preprocessing.load(path: path(at: index))
    }

    /// The boxes of `bb_<index>.txt`. Throws naming the path when the box folder or file is missing.
    public func boxes(at index: Int) throws -> [[Float]]? {
        try checkIndex(index)
        guard FolderListing.isDirectory(boxDirectory) else {
            throw SpaceError.file(path: boxDirectory, message: "bounding box folder does not exist")
        }
        return try GroundTruthBoxes.read(path: GroundTruthBoxes.fileName(directory: boxDirectory, index: index))
    }
}
