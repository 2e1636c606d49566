import CKernels

/// Splitting work over the kernels' thread team (Sources/CKernels/pool.c) from Swift: the same threads
/// oneDNN and every C kernel use, so nothing else in the process spins or sleeps beside them.
public enum KernelThreads {
    /// The team's size.
    public static var count: Int { Int(sk_pool_threads()) }

    /// Runs `body(part, parts)` for every part in 0..<parts, on up to `count` threads, and waits for all.
    public static func run(parts: Int, _ body: (Int, Int) -> Void) {
        guard parts > 1 else { body(0, 1); return }
        withoutActuallyEscaping(body) { escapable in
            var closure = escapable
            withUnsafeMutablePointer(to: &closure) { pointer in
                sk_pool_run(Int32(parts), { context, part, parts in
                    let f = context!.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee
                    f(Int(part), Int(parts))
                }, pointer)
            }
        }
    }

    /// The contiguous slice of 0..<count that part `part` of `parts` takes.
    public static func slice(_ count: Int, part: Int, parts: Int) -> Range<Int> {
        (count * part / parts)..<(count * (part + 1) / parts)
    }
}
