// A chain of layers keyed "0", "1", ... like torch.nn.Sequential.

/// Applies its layers in order. Layer i's keys are prefixed "i." (`0.weight`, `2.bias`); layers
/// without parameters (activations, PixelShuffle, Flatten) still take an index, as in PyTorch, so
/// `enc.3.weight` means the same layer here and in the reference.
public final class Sequential: Module, UnaryLayer {
    public let layers: [Layer]

    public init(_ layers: [Layer]) {
        self.layers = layers
        super.init()
    }

    public convenience init(_ layers: Layer...) { self.init(layers) }

    /// The children are the layers, named by index.
    public override func stateEntries() -> [(key: String, entry: StateEntry)] {
        layers.enumerated().map { (String($0.offset), StateEntry.child($0.element)) }
    }

    public var count: Int { layers.count }
    public subscript(index: Int) -> Layer { layers[index] }

    /// Runs the layers in order. On 4-D input, with fusion on (`ChainFusion`), convolutions and the
    /// pointwise layers between them run fused on blocked feature maps (see ConvChain.swift).
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        if x.rank == 4 && ChainFusion.active && layers.contains(where: { $0 is Conv2d }) { return try runFused(x) }
        var y = x
        for layer in layers { y = try Profiler.scope(layer) { try layer(y) } }
        return y
    }
}
