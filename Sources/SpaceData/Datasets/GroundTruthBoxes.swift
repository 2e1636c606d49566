import Foundation
import SpaceCore

/// Ground-truth box files in the OBJ3D format, as the reference's evaluation reads them.
///
/// `<split>/bb/bb_<i>.txt` holds the boxes of the i-th image: one object per line,
/// `center_x, center_y, width, height`, comma separated, in pixels of the 128-pixel image. Blank lines
/// are skipped; a file may hold no boxes.
public enum GroundTruthBoxes {
    /// `directory/bb_<index>.txt`.
    public static func fileName(directory: String, index: Int) -> String { directory + "/bb_\(index).txt" }

    /// Parses one box file into `[center_x, center_y, width, height]` rows. Throws `SpaceError.file`
    /// naming the path (and line) when the file is missing or a line is not four numbers.
    public static func read(path: String) throws -> [[Float]] {
        let text = String(decoding: try readFile(path), as: UTF8.self)
        return try parse(text, path: path)
    }

    /// Parses box-file text; `path` names the source in errors.
    public static func parse(_ text: String, path: String = "<text>") throws -> [[Float]] {
        var boxes: [[Float]] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            let values = fields.compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            guard fields.count == 4, values.count == 4 else {
                throw SpaceError.file(path: path, message: "line \(number + 1): expected 'center_x, center_y, width, height', got '\(line)'")
            }
            boxes.append(values.map { Float($0) })
        }
        return boxes
    }

    /// The text of a box file for `boxes` (`[center_x, center_y, width, height]` rows).
    public static func format(_ boxes: [[Float]]) -> String {
        boxes.map { box in box.map { String(format: "%.3f", Double($0)) }.joined(separator: ",") + "\n" }.joined()
    }

    /// Writes a box file atomically.
    public static func write(_ boxes: [[Float]], to path: String) throws {
        try writeFileAtomically(Array(format(boxes).utf8), to: path)
    }

    /// The reference's `read_boxes` conversion: `[y_min, y_max, x_min, x_max]` divided by the image
    /// size, so coordinates are in [0, 1].
    public static func normalizedCorners(_ boxes: [[Float]], imageSize: Float = 128) -> [[Float]] {
        let size = Double(imageSize)
        return boxes.map { b in
            let cx = Double(b[0]), cy = Double(b[1]), w = Double(b[2]), h = Double(b[3])
            return [cy - h / 2, cy + h / 2, cx - w / 2, cx + w / 2].map { Float($0 / size) }
        }
    }
}
