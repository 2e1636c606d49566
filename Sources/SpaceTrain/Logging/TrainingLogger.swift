import Foundation
import SpaceCore

/// Training logs in one directory (output/logs/<exp_name>): a TensorBoard event file and
/// `scalars.csv` with the same scalars. Images go to the event file only.
///
///     let log = try TrainingLogger(logRoot: "output/logs", experiment: cfg.exp_name)
///     try log.scalars(["loss": loss, "elbo": elbo], step: globalStep)
///     try log.image("train/grid", makeGrid(images: [x, recon, fg, bg], columns: batch), step: globalStep)
///
/// Every call reaches the kernel before it returns, so a killed run leaves readable logs.
public final class TrainingLogger: @unchecked Sendable {
    public static let csvFileName = "scalars.csv"

    public let directory: String
    public let events: EventFileWriter
    public let csv: CSVScalarLogger

    /// Creates `directory` if needed, a new event file in it, and opens (or continues) its CSV.
    public init(directory: String) throws {
        self.directory = directory
        events = try EventFileWriter(directory: directory)
        csv = try CSVScalarLogger(path: (directory as NSString).appendingPathComponent(TrainingLogger.csvFileName))
    }

    /// Logs to `<logRoot>/<experiment>`, as the reference's `logdir` and `exp_name`.
    public convenience init(logRoot: String = "output/logs", experiment: String) throws {
        try self.init(directory: (logRoot as NSString).appendingPathComponent(experiment))
    }

    public func scalar(_ tag: String, _ value: Double, step: Int) throws {
        try scalars([tag: value], step: step)
    }

    /// All values in one event and one CSV write, sorted by tag.
    public func scalars(_ values: [String: Double], step: Int) throws {
        let sorted = values.sorted { $0.key < $1.key }
        let wallTime = Date().timeIntervalSince1970
        try events.addScalars(sorted.map { ($0.key, Float($0.value)) }, step: step, wallTime: wallTime)
        try csv.log(sorted.map { ($0.key, $0.value) }, step: step, wallTime: wallTime)
    }

    /// An image tensor with values in [0, 1]: (3, H, W), (H, W, 3), one-channel or (H, W); see
    /// `ImageSummary.rgbPixels`. Use `makeGrid` to log several images as one.
    public func image(_ tag: String, _ tensor: Tensor, step: Int) throws {
        try events.addImage(tag, try ImageSummary.png(tensor), step: step)
    }

    /// Interleaved 8-bit RGB pixels, row-major, `width * height * 3` bytes.
    public func image(_ tag: String, rgb: [UInt8], width: Int, height: Int, step: Int) throws {
        try events.addImage(tag, try ImageSummary.png(rgb: rgb, width: width, height: height), step: step)
    }

    /// Puts both files on stable storage (fsync).
    public func flush() throws {
        try events.flush()
        try csv.flush()
    }

    /// Closes both files; closing twice is allowed.
    public func close() throws {
        var firstError: Error?
        do { try events.close() } catch { firstError = error }
        do { try csv.close() } catch { firstError = firstError ?? error }
        if let firstError { throw firstError }
    }
}
