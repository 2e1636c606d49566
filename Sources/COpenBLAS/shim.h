// OpenBLAS from Debian's libopenblas-dev: CBLAS plus the LAPACK routines we call (Fortran ABI).
#ifndef SPACE_COPENBLAS_SHIM_H
#define SPACE_COPENBLAS_SHIM_H
#include <cblas.h>
// LAPACK: LU solve (sgesv) and symmetric eigenvalues (ssyev), Fortran calling convention.
void sgesv_(const int *n, const int *nrhs, float *a, const int *lda, int *ipiv, float *b, const int *ldb, int *info);
#endif
