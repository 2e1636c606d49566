import Foundation
import SpaceCore

/// One batch from a `DataLoader`.
public struct Batch: @unchecked Sendable {
    /// (B, 3, H, W). B is below the batch size for the last batch of an epoch (unless `dropLast`) and
    /// when images of the batch could not be decoded.
    public let images: Tensor
    /// The dataset index of each row of `images`.
    public let indices: [Int]
    /// The position of this batch in the epoch, from 0.
    public let number: Int
    /// Dataset indices of this batch that were dropped because they could not be decoded.
    public let skipped: [Int]
}

/// An item the loader could not decode and left out.
public struct SkippedItem: Error, Equatable, Sendable {
    public let index: Int
    public let path: String
    public let reason: String
}

/// Batches of a `SceneDataset` for one epoch, decoded ahead on background threads.
///
/// The order of an epoch is a pure function of `(seed, epoch)` (identity when `shuffle` is false), and
/// every batch holds the items of its slice of that order in slice order, so the batches do not depend
/// on the number of workers. `batches(from: k)` starts at batch k without decoding the ones before:
/// a run resumed at (epoch e, batch k) sees exactly the batches an uninterrupted run would.
///
/// Items whose `image(at:)` throws are dropped from their batch with a warning and counted in
/// `skippedCount`; a batch whose items all fail comes back with no rows (B = 0, `indices` empty).
public final class DataLoader: Sequence, @unchecked Sendable {
    public let dataset: any SceneDataset
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: UInt64
    public let epoch: Int
    /// Background decoding threads; 0 decodes on the calling thread.
    public let workers: Int
    public let dropLast: Bool
    /// How many batches beyond the one being waited for may be decoded ahead.
    public let prefetch: Int
    /// The dataset indices of this epoch in visiting order.
    public let order: [Int]
    /// Called once per skipped item (default: a line on standard error).
    public let warn: @Sendable (String) -> Void

    private let lock = NSLock()
    private var skippedList: [SkippedItem] = []

    public init(dataset: any SceneDataset, batchSize: Int, shuffle: Bool, seed: UInt64, epoch: Int = 0,
                workers: Int = 0, dropLast: Bool = false, prefetch: Int = 2,
                warn: @escaping @Sendable (String) -> Void = DataLoader.standardErrorWarning) throws {
        guard batchSize > 0 else { throw SpaceError.argument(op: "DataLoader", message: "batch size \(batchSize) must be positive") }
        guard workers >= 0, prefetch >= 0, epoch >= 0 else {
            throw SpaceError.argument(op: "DataLoader", message: "workers \(workers), prefetch \(prefetch) and epoch \(epoch) must not be negative")
        }
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = epoch
        self.workers = workers
        self.dropLast = dropLast
        self.prefetch = prefetch
        self.warn = warn
        self.order = shuffle ? DataLoader.permutation(count: dataset.count, seed: seed, epoch: epoch) : Array(0..<dataset.count)
    }

    public static let standardErrorWarning: @Sendable (String) -> Void = { message in
        FileHandle.standardError.write(Data(("warning: " + message + "\n").utf8))
    }

    /// Batches in the epoch.
    public var batchCount: Int { dropLast ? order.count / batchSize : (order.count + batchSize - 1) / batchSize }

    /// The dataset indices of batch `number` (before any are skipped).
    public func indices(ofBatch number: Int) -> [Int] {
        let lo = number * batchSize
        return Array(order[lo..<Swift.min(lo + batchSize, order.count)])
    }

    /// Items skipped so far by every iteration of this loader.
    public var skippedCount: Int { lock.lock(); defer { lock.unlock() }; return skippedList.count }
    public var skippedItems: [SkippedItem] { lock.lock(); defer { lock.unlock() }; return skippedList }

    public func makeIterator() -> BatchIterator { BatchIterator(loader: self, start: 0) }

    /// The batches from number `start` on (a resumed epoch).
    public func batches(from start: Int) -> BatchIterator { BatchIterator(loader: self, start: start) }

    /// The visiting order of an epoch: a Fisher-Yates shuffle driven by xoshiro256** seeded from
    /// `seed` and `epoch`.
    public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        let rng = SeededNoise(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15 ^ 0x5DA7_A5EE_D0F0_0D15)
        var p = Array(0..<count)
        if count < 2 { return p }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int(uniformBelow(UInt64(i + 1), rng))
            p.swapAt(i, j)
        }
        return p
    }

    /// An unbiased integer in 0..<bound (Lemire's multiply-and-reject).
    static func uniformBelow(_ bound: UInt64, _ rng: SeededNoise) -> UInt64 {
        var m = rng.next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = rng.next().multipliedFullWidth(by: bound) }
        }
        return m.high
    }

    func record(_ items: [SkippedItem]) {
        guard !items.isEmpty else { return }
        lock.lock(); skippedList += items; lock.unlock()
        for item in items { warn("skipping image \(item.index) (\(item.path)): \(item.reason)") }
    }

    /// Decodes one item: the tensor, or why it failed.
    func load(_ index: Int) -> Result<Tensor, SkippedItem> {
        do {
            return .success(try dataset.image(at: index))
        } catch {
            return .failure(SkippedItem(index: index, path: dataset.path(at: index), reason: String(describing: error)))
        }
    }
}

/// Iterates a `DataLoader`'s batches; stops its worker threads when finished or released.
public final class BatchIterator: IteratorProtocol, Sequence, @unchecked Sendable {
    private let loader: DataLoader
    private var current: Int
    private let pipeline: Prefetcher?

    init(loader: DataLoader, start: Int) {
        self.loader = loader
        self.current = Swift.max(0, start)
        if loader.workers > 0 && current < loader.batchCount {
            let jobs = (current..<loader.batchCount).map { loader.indices(ofBatch: $0) }
            pipeline = Prefetcher(loader: loader, firstBatch: current, jobs: jobs)
        } else {
            pipeline = nil
        }
    }

    deinit { pipeline?.cancel() }

    public func next() -> Batch? {
        guard current < loader.batchCount else { pipeline?.cancel(); return nil }
        let number = current
        current += 1
        let indices = loader.indices(ofBatch: number)
        let results = pipeline?.take(number) ?? indices.map { loader.load($0) }
        return assemble(number: number, indices: indices, results: results)
    }

    private func assemble(number: Int, indices: [Int], results: [Result<Tensor, SkippedItem>]) -> Batch {
        var tensors: [Tensor] = []
        var kept: [Int] = []
        var skipped: [SkippedItem] = []
        for (index, result) in zip(indices, results) {
            switch result {
            case .success(let t):
                if let first = tensors.first, first.shape != t.shape {
                    skipped.append(SkippedItem(index: index, path: loader.dataset.path(at: index),
                                               reason: "image of shape \(shapeString(t.shape)) in a batch of \(shapeString(first.shape))"))
                } else {
                    tensors.append(t)
                    kept.append(index)
                }
            case .failure(let item):
                skipped.append(item)
            }
        }
        loader.record(skipped)
        let itemShape = tensors.first?.shape ?? [3, loader.dataset.imageSize, loader.dataset.imageSize]
        let images = Tensor.zeros([tensors.count] + itemShape)
        let stride = itemShape.reduce(1, *)
        for (row, t) in tensors.enumerated() { (images.pointer + row * stride).update(from: t.pointer, count: stride) }
        return Batch(images: images, indices: kept, number: number, skipped: skipped.map(\.index))
    }
}

/// Worker threads decoding the items of upcoming batches into per-batch slots.
final class Prefetcher: @unchecked Sendable {
    private let loader: DataLoader
    private let firstBatch: Int
    private let jobs: [[Int]]
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var slots: [Int: [Result<Tensor, SkippedItem>?]] = [:]
    private var remaining: [Int: Int] = [:]
    private var nextBatch: Int       // next job: batch position (relative to firstBatch) and slot
    private var nextSlot = 0
    private var waitingFor: Int      // the batch the consumer takes next (relative)
    private var cancelled = false

    init(loader: DataLoader, firstBatch: Int, jobs: [[Int]]) {
        self.loader = loader
        self.firstBatch = firstBatch
        self.jobs = jobs
        self.nextBatch = 0
        self.waitingFor = 0
        for _ in 0..<loader.workers {
            let thread = Thread { [self] in self.work() }
            thread.name = "SpaceData.loader"
            thread.start()
        }
    }

    private func work() {
        while true {
            condition.lock()
            while !cancelled && nextBatch < jobs.count && nextBatch > waitingFor + loader.prefetch { condition.wait() }
            if cancelled || nextBatch >= jobs.count { condition.unlock(); return }
            let batch = nextBatch, slot = nextSlot
            if slots[batch] == nil {
                slots[batch] = Array(repeating: nil, count: jobs[batch].count)
                remaining[batch] = jobs[batch].count
            }
            nextSlot += 1
            if nextSlot == jobs[batch].count { nextSlot = 0; nextBatch += 1 }
            condition.unlock()

            let result = loader.load(jobs[batch][slot])

            condition.lock()
            slots[batch]?[slot] = result
            remaining[batch, default: 0] -= 1
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Blocks until every item of batch `number` is decoded and hands the results over.
    func take(_ number: Int) -> [Result<Tensor, SkippedItem>] {
        let batch = number - firstBatch
        condition.lock()
        defer { condition.unlock() }
        while remaining[batch] != 0 || slots[batch] == nil { condition.wait() }
        let results = slots.removeValue(forKey: batch)!.map { $0! }
        remaining.removeValue(forKey: batch)
        waitingFor = batch + 1
        condition.broadcast()
        return results
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}
