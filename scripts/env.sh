# Sourced by the project's scripts: puts Swift on PATH and picks OpenBLAS's AVX-512 kernels where the
# CPU has them (Debian's OpenBLAS otherwise runs its AVX2 kernels at half speed on such CPUs; on a CPU
# without AVX-512 those kernels would fault, so nothing is set there). A core type the user already
# set is kept.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo \
   && grep -qw avx512dq /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=SkylakeX
fi
