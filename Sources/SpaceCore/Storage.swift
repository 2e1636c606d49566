import Foundation

/// Contiguous Float32 memory owned by tensors.
///
/// SPACE allocates the same shapes every training step, so freed buffers go back to a
/// size-keyed pool (`BufferPool`) and the next step reuses them instead of asking malloc.
public final class Storage: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// Uninitialised storage of `count` floats (from the pool when one of that size is free).
    public init(count: Int) {
        self.count = count
        self.pointer = BufferPool.shared.take(count)
        Profiler.allocated(bytes: count * MemoryLayout<Float>.stride)
    }

    /// Storage filled with `value`.
    public convenience init(count: Int, repeating value: Float) {
        self.init(count: count)
        pointer.initialize(repeating: value, count: count)
    }

    /// Storage holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { BufferPool.shared.give(pointer, count) }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(buffer) }
}

/// A pool of freed float buffers keyed by element count, bounded in total bytes.
public final class BufferPool: @unchecked Sendable {
    public static let shared = BufferPool()

    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var cachedFloats = 0
    private let lock = NSLock()
    /// Upper bound on cached memory, in floats: 40% of physical memory by default. A training step
    /// frees and re-allocates the same shapes every step; memory returned to the system comes back as
    /// fresh pages the kernel must zero (measured: 22% of an Atari step at B=12 with a 2 GiB cap).
    public var capacityFloats = Int(Double(ProcessInfo.processInfo.physicalMemory) * 0.4) / 4

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let n = max(count, 1)
        lock.lock()
        if var list = free[n], let p = list.popLast() {
            free[n] = list
            cachedFloats -= n
            lock.unlock()
            return p
        }
        lock.unlock()
        return UnsafeMutablePointer<Float>.allocate(capacity: n)
    }

    func give(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        let n = max(count, 1)
        lock.lock()
        if cachedFloats + n <= capacityFloats {
            free[n, default: []].append(p)
            cachedFloats += n
            lock.unlock()
        } else {
            lock.unlock()
            p.deallocate()
        }
    }

    /// Releases every cached buffer back to the system.
    public func drain() {
        lock.lock()
        for (_, list) in free { for p in list { p.deallocate() } }
        free.removeAll()
        cachedFloats = 0
        lock.unlock()
    }

    /// Bytes currently held by the pool.
    public var cachedBytes: Int { lock.lock(); defer { lock.unlock() }; return cachedFloats * 4 }
}
