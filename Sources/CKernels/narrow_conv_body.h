// The narrow convolution's loops, compiled once per instruction set (see narrow_conv.c). `O` is a
// compile-time constant in every caller (each function is instantiated per output count through the
// switches in the dispatchers), so the accumulators stay in registers. sk_v16 is 16 floats: one
// AVX-512 register, two AVX2 ones, four SSE ones. Independent accumulators (several pixels at once)
// keep the FMA units busy instead of waiting on one dependency chain.

// Output row (n, oh), all outputs: y[n, o, oh, :]. wp is packed (cb, i, j, o, 16).
static SK_ALWAYS_INLINE void SK_VERSIONED(narrow_fwd_row)(const narrow_geo *g, float *y, const float *x, const float *wp,
                                                          const float *b, int64_t n, int64_t oh, const int O) {
    const int64_t Cb = g->C / 16, H = g->H, W = g->W, kh = g->kh, kw = g->kw, Ho = g->Ho, Wo = g->Wo;
    const int64_t i0 = g->ph - oh > 0 ? g->ph - oh : 0, i1 = H + g->ph - oh < kh ? H + g->ph - oh : kh;
    // Interior columns (every tap inside the map) go two at a time.
    const int64_t in0 = g->pw, in1 = W + g->pw - kw + 1;
    int64_t ow = 0;
    while (ow < Wo) {
        int pair = ow >= in0 && ow + 1 < in1;
        int64_t j0 = g->pw - ow > 0 ? g->pw - ow : 0, j1 = W + g->pw - ow < kw ? W + g->pw - ow : kw;
        sk_v16 a0[SK_NARROW_MAX_O], a1[SK_NARROW_MAX_O];
        for (int o = 0; o < O; o++) { a0[o] = sk_v16_zero(); a1[o] = sk_v16_zero(); }
        for (int64_t cb = 0; cb < Cb; cb++)
            for (int64_t i = i0; i < i1; i++) {
                const float *xrow = x + ((n * Cb + cb) * H + oh + i - g->ph) * W * 16;
                for (int64_t j = j0; j < j1; j++) {
                    const float *xp = xrow + (ow + j - g->pw) * 16;
                    const float *wv = wp + ((cb * kh + i) * kw + j) * O * 16;
                    sk_v16 x0 = sk_v16_load(xp);
                    if (pair) {
                        sk_v16 x1 = sk_v16_load(xp + 16);
                        for (int o = 0; o < O; o++) {
                            sk_v16 w0 = sk_v16_load(wv + o * 16);
                            a0[o] += x0 * w0;
                            a1[o] += x1 * w0;
                        }
                    } else {
                        for (int o = 0; o < O; o++) a0[o] += x0 * sk_v16_load(wv + o * 16);
                    }
                }
            }
        for (int o = 0; o < O; o++) {
            float bo = b ? b[o] : 0.0f;
            float *yo = y + ((n * O + o) * Ho + oh) * Wo + ow;
            yo[0] = sk_v16_sum(a0[o]) + bo;
            if (pair) yo[1] = sk_v16_sum(a1[o]) + bo;
        }
        ow += pair ? 2 : 1;
    }
}

static void SK_VERSIONED(narrow_fwd_rows)(const narrow_geo *g, float *y, const float *x, const float *wp, const float *b,
                                          int64_t lo, int64_t hi) {
    for (int64_t u = lo; u < hi; u++) {
        int64_t n = u / g->Ho, oh = u % g->Ho;
        switch (g->O) {
        case 1: SK_VERSIONED(narrow_fwd_row)(g, y, x, wp, b, n, oh, 1); break;
        case 2: SK_VERSIONED(narrow_fwd_row)(g, y, x, wp, b, n, oh, 2); break;
        case 3: SK_VERSIONED(narrow_fwd_row)(g, y, x, wp, b, n, oh, 3); break;
        case 4: SK_VERSIONED(narrow_fwd_row)(g, y, x, wp, b, n, oh, 4); break;
        case 5: SK_VERSIONED(narrow_fwd_row)(g, y, x, wp, b, n, oh, 5); break;
        case 6: SK_VERSIONED(narrow_fwd_row)(g, y, x, wp, b, n, oh, 6); break;
        case 7: SK_VERSIONED(narrow_fwd_row)(g, y, x, wp, b, n, oh, 7); break;
        case 8: SK_VERSIONED(narrow_fwd_row)(g, y, x, wp, b, n, oh, 8); break;
        default: break;
        }
    }
}

// Input row (n, ih) of gx, every channel block: gx[n, cb, ih, iw, :] = sum over o, i, j of
// gy[n, o, ih + ph - i, iw + pw - j] * w[o, cb*16 + :, i, j]. Four pixels at a time where all taps
// land inside the output.
static SK_ALWAYS_INLINE void SK_VERSIONED(narrow_bwd_data_row)(const narrow_geo *g, float *gx, const float *gy, const float *wp,
                                                               int64_t n, int64_t ih, const int O) {
    const int64_t Cb = g->C / 16, H = g->H, W = g->W, kh = g->kh, kw = g->kw, Ho = g->Ho, Wo = g->Wo;
    const int64_t i0 = ih + g->ph - (Ho - 1) > 0 ? ih + g->ph - (Ho - 1) : 0, i1 = ih + g->ph + 1 < kh ? ih + g->ph + 1 : kh;
    // Columns iw whose taps j all give ow = iw + pw - j inside [0, Wo).
    const int64_t in0 = kw - 1 - g->pw, in1 = Wo - g->pw;
    for (int64_t cb = 0; cb < Cb; cb++) {
        int64_t iw = 0;
        while (iw < W) {
            int quad = iw >= in0 && iw + 3 < in1;
            int64_t j0 = iw + g->pw - (Wo - 1) > 0 ? iw + g->pw - (Wo - 1) : 0, j1 = iw + g->pw + 1 < kw ? iw + g->pw + 1 : kw;
            sk_v16 a0 = sk_v16_zero(), a1 = sk_v16_zero(), a2 = sk_v16_zero(), a3 = sk_v16_zero();
            for (int64_t i = i0; i < i1; i++) {
                int64_t oh = ih + g->ph - i;
                for (int64_t j = j0; j < j1; j++) {
                    int64_t ow = iw + g->pw - j;
                    const float *wv = wp + ((cb * kh + i) * kw + j) * O * 16;
                    for (int o = 0; o < O; o++) {
                        const float *d = gy + ((n * O + o) * Ho + oh) * Wo + ow;
                        sk_v16 w0 = sk_v16_load(wv + o * 16);
                        a0 += sk_v16_splat(d[0]) * w0;
                        if (quad) {
                            a1 += sk_v16_splat(d[1]) * w0;
                            a2 += sk_v16_splat(d[2]) * w0;
                            a3 += sk_v16_splat(d[3]) * w0;
                        }
                    }
                }
            }
            float *dst = gx + ((n * Cb + cb) * H + ih) * W * 16 + iw * 16;
            sk_v16_store(dst, a0);
            if (quad) { sk_v16_store(dst + 16, a1); sk_v16_store(dst + 32, a2); sk_v16_store(dst + 48, a3); }
            iw += quad ? 4 : 1;
        }
    }
}

static void SK_VERSIONED(narrow_bwd_data_rows)(const narrow_geo *g, float *gx, const float *gy, const float *wp,
                                               int64_t lo, int64_t hi) {
    for (int64_t u = lo; u < hi; u++) {
        int64_t n = u / g->H, ih = u % g->H;
        switch (g->O) {
        case 1: SK_VERSIONED(narrow_bwd_data_row)(g, gx, gy, wp, n, ih, 1); break;
        case 2: SK_VERSIONED(narrow_bwd_data_row)(g, gx, gy, wp, n, ih, 2); break;
        case 3: SK_VERSIONED(narrow_bwd_data_row)(g, gx, gy, wp, n, ih, 3); break;
        case 4: SK_VERSIONED(narrow_bwd_data_row)(g, gx, gy, wp, n, ih, 4); break;
        case 5: SK_VERSIONED(narrow_bwd_data_row)(g, gx, gy, wp, n, ih, 5); break;
        case 6: SK_VERSIONED(narrow_bwd_data_row)(g, gx, gy, wp, n, ih, 6); break;
        case 7: SK_VERSIONED(narrow_bwd_data_row)(g, gx, gy, wp, n, ih, 7); break;
        case 8: SK_VERSIONED(narrow_bwd_data_row)(g, gx, gy, wp, n, ih, 8); break;
        default: break;
        }
    }
}

// Weight gradient of one image, added in double into acc (cb, i, j, o, 16) and the bias's into accb (o).
// Per tap, the sum over output positions runs in float with two interleaved accumulators per output.
static SK_ALWAYS_INLINE void SK_VERSIONED(narrow_bwd_weights_image)(const narrow_geo *g, double *acc, double *accb,
                                                                    const float *gy, const float *x, int64_t n, const int O) {
    const int64_t Cb = g->C / 16, H = g->H, W = g->W, kh = g->kh, kw = g->kw, Ho = g->Ho, Wo = g->Wo;
    for (int64_t cb = 0; cb < Cb; cb++)
        for (int64_t i = 0; i < kh; i++) {
            int64_t oh0 = g->ph - i > 0 ? g->ph - i : 0, oh1 = H + g->ph - i < Ho ? H + g->ph - i : Ho;
            for (int64_t j = 0; j < kw; j++) {
                int64_t ow0 = g->pw - j > 0 ? g->pw - j : 0, ow1 = W + g->pw - j < Wo ? W + g->pw - j : Wo;
                sk_v16 a[SK_NARROW_MAX_O], c[SK_NARROW_MAX_O];
                for (int o = 0; o < O; o++) { a[o] = sk_v16_zero(); c[o] = sk_v16_zero(); }
                for (int64_t oh = oh0; oh < oh1; oh++) {
                    const float *xrow = x + ((n * Cb + cb) * H + oh + i - g->ph) * W * 16 + (j - g->pw) * 16;
                    const float *grow = gy + (n * O * Ho + oh) * Wo;
                    int64_t ow = ow0;
                    for (; ow + 1 < ow1; ow += 2) {
                        sk_v16 x0 = sk_v16_load(xrow + ow * 16), x1 = sk_v16_load(xrow + ow * 16 + 16);
                        for (int o = 0; o < O; o++) {
                            const float *d = grow + o * Ho * Wo + ow;
                            a[o] += sk_v16_splat(d[0]) * x0;
                            c[o] += sk_v16_splat(d[1]) * x1;
                        }
                    }
                    for (; ow < ow1; ow++) {
                        sk_v16 x0 = sk_v16_load(xrow + ow * 16);
                        for (int o = 0; o < O; o++) a[o] += sk_v16_splat(grow[o * Ho * Wo + ow]) * x0;
                    }
                }
                double *dst = acc + ((cb * kh + i) * kw + j) * O * 16;
                for (int o = 0; o < O; o++) {
                    float t[16];
                    sk_v16_store(t, a[o] + c[o]);
                    for (int l = 0; l < 16; l++) dst[o * 16 + l] += t[l];
                }
            }
        }
    for (int o = 0; o < O; o++) {
        const float *p = gy + (n * O + o) * Ho * Wo;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int64_t q = 0;
        for (; q + 4 <= Ho * Wo; q += 4) { s0 += p[q]; s1 += p[q + 1]; s2 += p[q + 2]; s3 += p[q + 3]; }
        for (; q < Ho * Wo; q++) s0 += p[q];
        accb[o] += (double)((s0 + s1) + (s2 + s3));
    }
}

static void SK_VERSIONED(narrow_bwd_weights_images)(const narrow_geo *g, double *acc, double *accb, const float *gy,
                                                    const float *x, int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; n++) {
        switch (g->O) {
        case 1: SK_VERSIONED(narrow_bwd_weights_image)(g, acc, accb, gy, x, n, 1); break;
        case 2: SK_VERSIONED(narrow_bwd_weights_image)(g, acc, accb, gy, x, n, 2); break;
        case 3: SK_VERSIONED(narrow_bwd_weights_image)(g, acc, accb, gy, x, n, 3); break;
        case 4: SK_VERSIONED(narrow_bwd_weights_image)(g, acc, accb, gy, x, n, 4); break;
        case 5: SK_VERSIONED(narrow_bwd_weights_image)(g, acc, accb, gy, x, n, 5); break;
        case 6: SK_VERSIONED(narrow_bwd_weights_image)(g, acc, accb, gy, x, n, 6); break;
        case 7: SK_VERSIONED(narrow_bwd_weights_image)(g, acc, accb, gy, x, n, 7); break;
        case 8: SK_VERSIONED(narrow_bwd_weights_image)(g, acc, accb, gy, x, n, 8); break;
        default: break;
        }
    }
}
