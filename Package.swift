// swift-tools-version:6.0
// Space: unsupervised object-centric scene decomposition (SPACE) in Swift.
import PackageDescription

// C kernels are the hot loops: always optimised, even in debug builds, so tests stay fast. No -m flags:
// each hot kernel is compiled for AVX-512, AVX2 and the baseline and picks one at run time
// (Sources/CKernels/sk_multiversion.h, SK_CLONES), so one build runs on any x86-64 and on arm64.
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno", "-Wall", "-Wno-unknown-pragmas"])]
let swiftModes: [SwiftLanguageMode] = [.v5]

let package = Package(
    name: "Space",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "space", targets: ["SpaceCLI"]),
        .library(name: "SpaceCore", targets: ["SpaceCore"]),
        .library(name: "SpaceModels", targets: ["SpaceModels"]),
        .library(name: "SpaceData", targets: ["SpaceData"]),
        .library(name: "SpaceTrain", targets: ["SpaceTrain"]),
        .library(name: "SpaceEval", targets: ["SpaceEval"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries from Debian: libopenblas-dev, libyaml-dev, libpng-dev.
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .systemLibrary(name: "CYAML", path: "Sources/CYAML"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),

        .target(name: "CKernels", dependencies: ["COpenBLAS"], path: "Sources/CKernels",
                cSettings: kernelFlags, linkerSettings: [.linkedLibrary("m"), .linkedLibrary("gomp"), .linkedLibrary("dnnl")]),
        .target(name: "SpaceCore", dependencies: ["CKernels", "COpenBLAS"], path: "Sources/SpaceCore",
                swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),
        .target(name: "SpaceModels", dependencies: ["SpaceCore"], path: "Sources/SpaceModels"),
        .target(name: "SpaceData", dependencies: ["SpaceCore", "CPNG"], path: "Sources/SpaceData"),
        .target(name: "SpaceTrain", dependencies: ["SpaceCore", "SpaceModels", "SpaceData", "SpaceEval", "CYAML"], path: "Sources/SpaceTrain"),
        .target(name: "SpaceEval", dependencies: ["SpaceCore", "SpaceModels", "SpaceData"], path: "Sources/SpaceEval"),
        .executableTarget(name: "SpaceCLI", dependencies: [
            "SpaceCore", "SpaceModels", "SpaceData", "SpaceTrain", "SpaceEval",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/SpaceCLI"),

        // Examples/: an extension story that builds with the package.
        .executableTarget(name: "custom-glimpse-decoder", dependencies: ["SpaceCore", "SpaceModels", "SpaceData", "SpaceTrain"],
                          path: "Examples/CustomGlimpseDecoder"),

        .testTarget(name: "SpaceCoreTests", dependencies: ["SpaceCore", "CKernels"], path: "Tests/SpaceCoreTests"),
        .testTarget(name: "SpaceTrainTests", dependencies: ["SpaceTrain", "SpaceModels", "SpaceData", "SpaceCore"], path: "Tests/SpaceTrainTests"),
        .testTarget(name: "SpaceEvalTests", dependencies: ["SpaceEval", "SpaceModels", "SpaceCore"], path: "Tests/SpaceEvalTests", exclude: ["Fixtures"]),
        .testTarget(name: "SpaceCLITests", dependencies: ["SpaceCLI", "SpaceTrain", "SpaceData", "SpaceEval", "SpaceModels", "SpaceCore"],
                    path: "Tests/SpaceCLITests"),
        .testTarget(name: "SpaceModelsTests", dependencies: ["SpaceModels", "SpaceTrain", "SpaceCore"], path: "Tests/SpaceModelsTests"),
        .testTarget(name: "SpaceDataTests", dependencies: ["SpaceData", "SpaceCore"], path: "Tests/SpaceDataTests"),
    ],
    swiftLanguageModes: swiftModes
)
