import CKernels
import COpenBLAS
import Foundation

/// How OpenBLAS runs in this process.
///
/// Debian's OpenBLAS picks its AVX2 (Haswell) kernels on AVX-512 CPUs it does not recognise, at about
/// half the speed, unless `OPENBLAS_CORETYPE=SkylakeX` is in the environment when the library loads,
/// which is before `main` runs. `ensureFastPath()` therefore re-executes the process once with that
/// variable set, when the CPU has the AVX-512 subsets those kernels use and the user has not chosen a
/// core type. On a CPU without AVX-512 it does nothing: the SkylakeX kernels would fault there.
public enum BLASRuntime {
    /// The kernel family OpenBLAS selected (e.g. "SkylakeX", "Haswell", "Zen").
    public static var coreName: String { String(cString: openblas_get_corename()) }
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Whether this CPU has AVX-512 F, BW, DQ and VL (what OpenBLAS's SkylakeX kernels need).
    public static var cpuHasAVX512: Bool {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        let flags = Set(line.split(separator: " ").map(String.init))
        return ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
    }

    /// Re-executes the current process with OPENBLAS_CORETYPE=SkylakeX when that is the faster,
    /// supported choice and nobody set a core type. Returns only if no re-exec happened.
    public static func ensureFastPath() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["SPACE_NO_REEXEC"] == nil, cpuHasAVX512 else { return }
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)
        setenv("SPACE_NO_REEXEC", "1", 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv returned: keep running on the default kernels.
        for p in cargs { free(p) }
    }
}

/// What the engine runs on, for benchmark and log headers.
public enum EngineInfo {
    /// e.g. "threads 2, OpenBLAS SkylakeX (1 thread)".
    public static var summary: String {
        "threads \(sk_pool_threads()), OpenBLAS \(BLASRuntime.coreName) (\(BLASRuntime.threads) threads)"
    }
}
