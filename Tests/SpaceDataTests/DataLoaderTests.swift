import XCTest
@testable import SpaceData
import SpaceCore

final class DataLoaderTests: XCTestCase {
    /// Each synthetic image is filled with its own index, so a batch's contents show its order.
    private func contents(_ batch: Batch) -> [Int] {
        let stride = batch.images.shape.dropFirst().reduce(1, *)
        return (0..<batch.images.shape[0]).map { Int(batch.images.array[$0 * stride]) }
    }

    private func run(_ loader: DataLoader) -> [[Int]] {
        loader.map { batch in
            XCTAssertEqual(contents(batch), batch.indices, "rows hold the images of their indices")
            return batch.indices
        }
    }

    func testShuffleIsAPermutationDeterminedBySeedAndEpoch() throws {
        let dataset = SyntheticDataset(count: 103)
        let a = try DataLoader(dataset: dataset, batchSize: 10, shuffle: true, seed: 7, epoch: 3)
        let b = try DataLoader(dataset: dataset, batchSize: 10, shuffle: true, seed: 7, epoch: 3)
        XCTAssertEqual(a.order, b.order)
        XCTAssertEqual(a.order.sorted(), Array(0..<103))
        XCTAssertNotEqual(a.order, Array(0..<103))
        XCTAssertNotEqual(try DataLoader(dataset: dataset, batchSize: 10, shuffle: true, seed: 7, epoch: 4).order, a.order)
        XCTAssertNotEqual(try DataLoader(dataset: dataset, batchSize: 10, shuffle: true, seed: 8, epoch: 3).order, a.order)
        XCTAssertEqual(try DataLoader(dataset: dataset, batchSize: 10, shuffle: false, seed: 7, epoch: 3).order, Array(0..<103))
        // Pinned so a change to the shuffle (which would change resumed runs) is noticed.
        XCTAssertEqual(DataLoader.permutation(count: 10, seed: 1, epoch: 0), [1, 5, 0, 2, 3, 9, 4, 6, 8, 7])
        XCTAssertEqual(DataLoader.permutation(count: 10, seed: 1, epoch: 1), [0, 8, 5, 9, 7, 2, 4, 1, 6, 3])
    }

    func testBatchesDoNotDependOnWorkers() throws {
        let dataset = SyntheticDataset(count: 57)
        let reference = run(try DataLoader(dataset: dataset, batchSize: 8, shuffle: true, seed: 42, epoch: 1, workers: 0))
        XCTAssertEqual(reference.count, 8)
        XCTAssertEqual(reference.last?.count, 1)
        XCTAssertEqual(reference.flatMap { $0 }.sorted(), Array(0..<57))
        for workers in [1, 2, 3, 8] {
            for prefetch in [0, 1, 4] {
                let loader = try DataLoader(dataset: dataset, batchSize: 8, shuffle: true, seed: 42, epoch: 1, workers: workers, prefetch: prefetch)
                XCTAssertEqual(run(loader), reference, "\(workers) workers, prefetch \(prefetch)")
            }
        }
    }

    func testDropLast() throws {
        let loader = try DataLoader(dataset: SyntheticDataset(count: 57), batchSize: 8, shuffle: false, seed: 0, workers: 2, dropLast: true)
        XCTAssertEqual(loader.batchCount, 7)
        let batches = run(loader)
        XCTAssertEqual(batches.count, 7)
        XCTAssertTrue(batches.allSatisfy { $0.count == 8 })
    }

    func testResumeAtEpochAndBatch() throws {
        let dataset = SyntheticDataset(count: 50)
        for workers in [0, 3] {
            let full = run(try DataLoader(dataset: dataset, batchSize: 6, shuffle: true, seed: 5, epoch: 2, workers: 2))
            let resumedLoader = try DataLoader(dataset: dataset, batchSize: 6, shuffle: true, seed: 5, epoch: 2, workers: workers)
            let resumed = Array(resumedLoader.batches(from: 4))
            XCTAssertEqual(resumed.map(\.indices), Array(full[4...]), "\(workers) workers")
            XCTAssertEqual(resumed.map(\.number), Array(4..<full.count))
            XCTAssertTrue(Array(resumedLoader.batches(from: full.count)).isEmpty)
        }
    }

    func testAbandonedIterationStopsCleanly() throws {
        let loader = try DataLoader(dataset: SyntheticDataset(count: 200), batchSize: 4, shuffle: true, seed: 1, workers: 4)
        for _ in 0..<20 {
            let iterator = loader.makeIterator()
            XCTAssertNotNil(iterator.next())
        }
        XCTAssertEqual(run(loader).count, 50)
    }

    func testFailingItemsAreDroppedFromTheirBatch() throws {
        let dataset = SyntheticDataset(count: 10, failing: [2, 3, 7])
        let sink = WarningSink()
        for workers in [0, 2] {
            let loader = try DataLoader(dataset: dataset, batchSize: 2, shuffle: false, seed: 0, workers: workers, warn: sink.add)
            let batches = Array(loader)
            XCTAssertEqual(batches.map(\.indices), [[0, 1], [], [4, 5], [6], [8, 9]])
            XCTAssertEqual(batches[1].images.shape, [0, 3, 4, 4])
            XCTAssertEqual(batches[1].skipped, [2, 3])
            XCTAssertEqual(loader.skippedCount, 3)
            XCTAssertEqual(loader.skippedItems.map(\.index), [2, 3, 7])
        }
        XCTAssertEqual(sink.messages.count, 6)
    }

    func testInvalidArguments() {
        XCTAssertThrowsError(try DataLoader(dataset: SyntheticDataset(count: 3), batchSize: 0, shuffle: false, seed: 0))
        XCTAssertThrowsError(try DataLoader(dataset: SyntheticDataset(count: 3), batchSize: 1, shuffle: false, seed: 0, workers: -1))
    }
}
