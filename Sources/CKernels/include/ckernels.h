// CKernels: the hot loops of Space, in C.
//
// Conventions (see each family's header):
// - Each op is a pair sk_<op>_forward / sk_<op>_backward.
// - Arguments: outputs first, then saved values, then const inputs, then sizes as int64_t.
// - Forward writes what backward needs as explicit outputs; no hidden state, no globals.
// - Backward ADDS into gradient buffers (+=); zeroing is the caller's job.
// - Every optimised kernel keeps a naive twin (sk_naive_*) used as fallback and test oracle.
// - Kernels that can see invalid input return an int status (SK_OK or an SK_ERR_* code).
#ifndef SPACE_CKERNELS_H
#define SPACE_CKERNELS_H

#include <stdint.h>

#define SK_OK 0
#define SK_ERR_SHAPE 1
#define SK_ERR_ARG 2

#include "sk_elementwise.h"
#include "sk_reduce.h"
#include "sk_layout.h"
#include "sk_matmul.h"
#include "sk_conv.h"
#include "sk_norm.h"
#include "sk_spatial.h"
#include "sk_optim.h"
#include "sk_composite.h"
#include "sk_pool.h"
#include "sk_dnn.h"
#include "sk_isa.h"
#include "sk_pointwise.h"
#include "sk_narrow_conv.h"
#include "sk_memory.h"

#endif
