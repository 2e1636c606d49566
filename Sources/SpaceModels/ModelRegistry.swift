import SpaceCore

/// A scene model the trainer can run: a module whose forward pass gives SPACE's loss and log values,
/// and whose parameters split into the groups the two optimizers own.
public protocol SceneModel: Module {
    var arch: SpaceArch { get }
    func callAsFunction(_ x: Tensor, globalStep: Int, noise: NoiseSource) throws -> SpaceOutput
    /// Parameters of the foreground (optimised with train.solver.fg) and the background (train.solver.bg).
    func parameterGroups() -> (fg: [(String, Tensor)], bg: [(String, Tensor)])
}

extension Space: SceneModel {}

/// Models by the config's `model` name. SPACE registers itself as "SPACE"; a plugin registers its
/// variant with `ModelRegistry.shared.register("MyVariant") { arch in try MyVariant(arch: arch) }`
/// and selects it with `model MyVariant` in a config or on the command line.
public enum ModelRegistry {
    public typealias Builder = (SpaceArch) throws -> SceneModel
    public static let shared: Registry<Builder> = {
        let r = Registry<Builder>(kind: "model")
        try! r.register("SPACE") { arch in try Space(arch: arch) }
        return r
    }()

    /// Builds the model registered under `name` for `arch`.
    public static func make(_ name: String, arch: SpaceArch) throws -> SceneModel {
        try shared.builder(name)(arch)
    }
}
