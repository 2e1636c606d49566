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
        let head = [UInt8](handle.readData(ofLength: 9))
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        try? handle.close()
        // safetensors: an 8-byte little-endian header length that fits the file, then '{'.
        // Anything else (a ZIP, a legacy pickle) is PyTorch's, and its reader says what is wrong.
        var headerLength: UInt64 = 0
        for (i, b) in head.prefix(8).enumerated() { headerLength |= UInt64(b) << (8 * UInt64(i)) }
        let looksLikeSafetensors = head.count == 9 && head[8] == UInt8(ascii: "{") && (headerLength > 0 || size == 0)
        if !looksLikeSafetensors {
            let ckpt = try TorchCheckpoint.load(path: path)
            return (try ckpt.stateDict(), ckpt.epoch, ckpt.globalStep)
        }
        let st = try SafeTensors.load(path: path)
        return (st.values, st.metadata["epoch"].flatMap { Int($0) }, st.metadata["global_step"].flatMap { Int($0) })
    }
}
