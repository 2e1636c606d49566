import Foundation
import SpaceCore

/// Directory helpers shared by the dataset layouts.
enum FolderListing {
    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// The entry names of the folder at `path` (hidden entries, whose names start with ".", left out).
    /// `what` describes the folder in the error thrown when it is missing.
    static func entries(_ path: String, what: String) throws -> [String] {
        guard isDirectory(path) else { throw SpaceError.file(path: path, message: "\(what) folder does not exist") }
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }
        } catch {
            throw SpaceError.file(path: path, message: "cannot list \(what) folder: \(error.localizedDescription)")
        }
    }

    /// Names of the regular files (not folders) in `path`.
    static func files(_ path: String, what: String) throws -> [String] {
        try entries(path, what: what).filter { !isDirectory(path + "/" + $0) }
    }

    /// Python's string order: code point by code point (Swift's `<` on String compares canonically
    /// equivalent forms and is not the same order for every input).
    static func codePointLess(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
    }
}
