import SpaceCore

/// The ATARI layout: `root/<Game>/<split folder>/<frame>` for each game folder (e.g.
/// `SpaceInvaders-v0`), split folders `train`, `validation`, `test`.
///
/// As the reference: every file of a game's split folder is an item; the items of all games are
/// ordered by their relative path `<Game>/<split>/<file>` compared as strings (code point order, so
/// `10.png` comes before `2.png`); each frame is decoded, converted to RGB (alpha discarded) and
/// resized to 128 x 128 with PIL's bilinear filter. Differences, all where the reference would crash
/// or silently read nothing: a game named in `gamelist` without a folder, a missing split folder and
/// a split without files are errors naming the path; hidden entries (".DS_Store") are ignored; without
/// a `gamelist`, only folders under `root` count as games.
public final class AtariDataset: SceneDataset {
    public let name = "ATARI"
    public let root: String
    public let split: DatasetSplit
    /// Item paths relative to `root`, in dataset order.
    public let files: [String]
    public let preprocessing: ImagePreprocessing

    /// The folder each split is read from.
    public static func folder(for split: DatasetSplit) -> String {
        switch split {
        case .train: return "train"
        case .val: return "validation"
        case .test: return "test"
        }
    }

    public init(root: String, split: DatasetSplit, gamelist: [String]? = nil,
                preprocessing: ImagePreprocessing = ImagePreprocessing()) throws {
        self.root = root
        self.split = split
        self.preprocessing = preprocessing
        let present = try FolderListing.entries(root, what: "ATARI dataset").filter { FolderListing.isDirectory(root + "/" + $0) }
        let games: [String]
        if let gamelist {
            var seen = Set<String>()
            games = gamelist.filter { seen.insert($0).inserted }
            for game in games where !present.contains(game) {
                throw SpaceError.file(path: root + "/" + game, message: "game '\(game)' from gamelist has no folder in the ATARI dataset")
            }
        } else {
            games = present
        }
        guard !games.isEmpty else { throw SpaceError.file(path: root, message: "ATARI dataset has no game folders") }
        let splitFolder = AtariDataset.folder(for: split)
        var files: [String] = []
        for game in games {
            let dir = root + "/" + game + "/" + splitFolder
            let names = try FolderListing.files(dir, what: "ATARI '\(splitFolder)' split")
            guard !names.isEmpty else { throw SpaceError.file(path: dir, message: "ATARI '\(splitFolder)' split folder is empty") }
            files += names.map { game + "/" + splitFolder + "/" + $0 }
        }
        self.files = files.sorted(by: FolderListing.codePointLess)
    }

    public var count: Int { files.count }
    public var imageSize: Int { preprocessing.size }

    public func path(at index: Int) -> String { root + "/" + files[index] }

    public func image(at index: Int) throws -> Tensor {
        try checkIndex(index)
        return try preprocessing.load(path: path(at: index))
    }
}
