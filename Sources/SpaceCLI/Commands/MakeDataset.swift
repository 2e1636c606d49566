import ArgumentParser
import Foundation
import SpaceData

/// `space make-dataset`: renders the built-in procedural scene dataset in the OBJ3D layout (train/val/test
/// PNGs plus ground-truth boxes), so the demo and the tests need no download.
struct MakeDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-dataset",
        abstract: "Render the built-in scene dataset (OBJ3D layout with ground-truth boxes).")

    @Option(help: "Output folder (becomes dataset_roots.OBJ3D_SMALL in the demo config).") var root = "data/demo"
    @Option(help: "Training images.") var train = 2000
    @Option(help: "Validation images.") var val = 200
    @Option(help: "Test images.") var test = 200
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Fewest objects per scene.") var minObjects = SceneGeneratorOptions().objectCount.lowerBound
    @Option(help: "Most objects per scene.") var maxObjects = SceneGeneratorOptions().objectCount.upperBound
    @Option(help: "Smallest object width or height, in pixels.") var minSize = SceneGeneratorOptions().objectSize.lowerBound
    @Option(help: "Largest object width or height, in pixels.") var maxSize = SceneGeneratorOptions().objectSize.upperBound
    static let knownShapes = SceneShape.allCases.map(\.rawValue).joined(separator: ", ")
    @Option(help: "Shapes to draw, comma-separated (\(knownShapes)).")
    var shapes = SceneGeneratorOptions().shapes.map(\.rawValue).joined(separator: ",")
    @Flag(help: "Replace an existing dataset.") var overwrite = false

    /// The `--shapes` list as shapes; an unknown name is an error naming it and the known ones.
    func parsedShapes() throws -> [SceneShape] {
        let names = shapes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ValidationError("--shapes is empty: name at least one shape") }
        return try names.map { name in
            guard let shape = SceneShape(rawValue: name) else {
                throw ValidationError("--shapes: unknown shape '\(name)' (known: \(Self.knownShapes))")
            }
            return shape
        }
    }

    func validate() throws {
        guard minObjects >= 0, maxObjects >= minObjects else {
            throw ValidationError("--min-objects \(minObjects) and --max-objects \(maxObjects): need 0 <= min <= max")
        }
        guard minSize >= 2, maxSize >= minSize, maxSize <= 100 else {
            throw ValidationError("--min-size \(minSize) and --max-size \(maxSize): need 2 <= min <= max <= 100 pixels")
        }
        _ = try parsedShapes()
    }

    func run() throws {
        let t0 = Date()
        var options = SceneGeneratorOptions()
        options.objectCount = minObjects...maxObjects
        options.objectSize = minSize...maxSize
        options.shapes = try parsedShapes()
        try SceneGenerator(seed: seed, options: options).write(root: root, counts: (train, val, test), overwrite: overwrite)
        print(String(format: "wrote %d + %d + %d scenes to %@ in %.1fs", train, val, test, root, Date().timeIntervalSince(t0)))
    }
}
