import Foundation

/// Reads model weights from either format the project accepts: safetensors (ours) or a PyTorch
/// checkpoint (`.pth`, `.pt`, `.pth.tar`: the reference's checkpoint dict or a bare state dict),
/// chosen by content, not by extension.
public enum WeightFiles {
    /// The state dict in the file at `path`, plus epoch and global step when the file records them.
    public static func load(path: String) throws -> (state: [String: StateValue], epoch: Int?, globalStep: Int?) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw SpaceError.file(path: path, message: "no such file")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw SpaceError.file(path: path, message: "cannot open") }
        let head = handle.readData(ofLength: 8)
        try? handle.close()
        // A ZIP (PK\x03\x04) or a pickle (protocol opcode 0x80) is PyTorch's; anything else is tried as safetensors.
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head.first == 0x80 {
            let ckpt = try TorchCheckpoint.load(path: path)
            return (try ckpt.stateDict(), ckpt.epoch, ckpt.globalStep)
        }
        let st = try SafeTensors.load(path: path)
        return (st.values, st.metadata["epoch"].flatMap { Int($0) }, st.metadata["global_step"].flatMap { Int($0) })
    }
}
