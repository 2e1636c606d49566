// The pointwise stage's hot loops, compiled once per instruction set (see sk_multiversion.h and
// pointwise.c). Work is split into units u = (image n, channel block cb); a unit covers the r*r
// sub-pixel blocks of its channels, so per-(n, c) sums never collide between units. Each 16-lane loop
// is one AVX-512 vector (two AVX2 ones).

// Per-(n, c) sums of v and v^2 over a unit's positions: float partials per row, double totals.
static void SK_VERSIONED(pw_stats_units)(const sk_pw_desc *d, double *sum, double *sumsq, const float *z,
                                         int64_t lo, int64_t hi) {
    const int64_t Cb = d->C / 16, R2 = d->r * d->r, H = d->H, W = d->W;
    const int act = d->act_first ? d->act != SK_ACT_NONE : 0;
    const float alpha = d->alpha, kin = sk_act_kin(d);
    for (int64_t u = lo; u < hi; u++) {
        int64_t n = u / Cb, cb = u % Cb;
        double ds[16] = {0}, dq[16] = {0};
        for (int64_t s = 0; s < R2; s++) {
            const float *plane = z + ((n * Cb * R2 + s * Cb + cb) * H) * W * 16;
            for (int64_t h = 0; h < H; h++) {
                const float *row = plane + h * W * 16;
                float fs[16] = {0}, fq[16] = {0};
                for (int64_t w = 0; w < W; w++) {
                    const float *v = row + w * 16;
                    for (int l = 0; l < 16; l++) {
                        float x = sk_act(v[l], act, alpha, kin);
                        fs[l] += x;
                        fq[l] += x * x;
                    }
                }
                for (int l = 0; l < 16; l++) { ds[l] += fs[l]; dq[l] += fq[l]; }
            }
        }
        double *os = sum + n * d->C + cb * 16, *oq = sumsq + n * d->C + cb * 16;
        for (int l = 0; l < 16; l++) { os[l] = ds[l]; oq[l] = dq[l]; }
    }
}

static void SK_VERSIONED(pw_apply_units)(const sk_pw_desc *d, float *y, const float *z, const float *scale,
                                         const float *shift, int64_t lo, int64_t hi) {
    const int64_t Cb = d->C / 16, r = d->r, R2 = r * r, H = d->H, W = d->W, Wr = W * r, Hr = H * r;
    const int act = d->act != SK_ACT_NONE;
    const float alpha = d->alpha, kin = sk_act_kin(d);
    for (int64_t u = lo; u < hi; u++) {
        int64_t n = u / Cb, cb = u % Cb;
        float a[16], b[16];
        for (int l = 0; l < 16; l++) { a[l] = scale[n * d->C + cb * 16 + l]; b[l] = shift[n * d->C + cb * 16 + l]; }
        for (int64_t s = 0; s < R2; s++) {
            int64_t i = s / r, j = s % r;
            const float *plane = z + ((n * Cb * R2 + s * Cb + cb) * H) * W * 16;
            float *out = y + ((n * Cb + cb) * Hr) * Wr * 16;
            for (int64_t h = 0; h < H; h++) {
                const float *row = plane + h * W * 16;
                float *orow = out + ((h * r + i) * Wr + j) * 16;
                if (d->act_first) {
                    for (int64_t w = 0; w < W; w++) {
                        const float *v = row + w * 16;
                        float *o = orow + w * r * 16;
                        for (int l = 0; l < 16; l++) o[l] = sk_act(v[l], act, alpha, kin) * a[l] + b[l];
                    }
                } else {
                    for (int64_t w = 0; w < W; w++) {
                        const float *v = row + w * 16;
                        float *o = orow + w * r * 16;
                        for (int l = 0; l < 16; l++) o[l] = sk_act(v[l] * a[l] + b[l], act, alpha, kin);
                    }
                }
            }
        }
    }
}

static void SK_VERSIONED(pw_bsums_units)(const sk_pw_desc *d, double *s1, double *s2, const float *dy, const float *z,
                                         const float *mean, const float *rstd, const float *scale, const float *shift,
                                         int64_t lo, int64_t hi) {
    const int64_t Cb = d->C / 16, r = d->r, R2 = r * r, H = d->H, W = d->W, Wr = W * r, Hr = H * r;
    const int act = d->act != SK_ACT_NONE, first = d->act_first;
    const float alpha = d->alpha, kin = sk_act_kin(d);
    for (int64_t u = lo; u < hi; u++) {
        int64_t n = u / Cb, cb = u % Cb;
        float m[16], rs[16], a[16], b[16];
        for (int l = 0; l < 16; l++) {
            int64_t k = n * d->C + cb * 16 + l;
            m[l] = mean[k]; rs[l] = rstd[k]; a[l] = scale[k]; b[l] = shift[k];
        }
        double d1[16] = {0}, d2[16] = {0};
        for (int64_t s = 0; s < R2; s++) {
            int64_t i = s / r, j = s % r;
            const float *plane = z + ((n * Cb * R2 + s * Cb + cb) * H) * W * 16;
            const float *gplane = dy + ((n * Cb + cb) * Hr) * Wr * 16;
            for (int64_t h = 0; h < H; h++) {
                const float *row = plane + h * W * 16;
                const float *grow = gplane + ((h * r + i) * Wr + j) * 16;
                float f1[16] = {0}, f2[16] = {0};
                for (int64_t w = 0; w < W; w++) {
                    const float *v = row + w * 16, *gv = grow + w * r * 16;
                    for (int l = 0; l < 16; l++) {
                        float x = v[l], g = gv[l], vin;
                        if (first) { vin = sk_act(x, act, alpha, kin); }
                        else { vin = x; g *= sk_act_grad(x * a[l] + b[l], act, alpha, kin); }
                        float vhat = (vin - m[l]) * rs[l];
                        f1[l] += g;
                        f2[l] += g * vhat;
                    }
                }
                for (int l = 0; l < 16; l++) { d1[l] += f1[l]; d2[l] += f2[l]; }
            }
        }
        for (int l = 0; l < 16; l++) { s1[n * d->C + cb * 16 + l] = d1[l]; s2[n * d->C + cb * 16 + l] = d2[l]; }
    }
}

static void SK_VERSIONED(pw_bapply_units)(const sk_pw_desc *d, float *dz, const float *dy, const float *z,
                                          const float *mean, const float *rstd, const float *scale, const float *shift,
                                          const float *k1, const float *k2, const float *k3, int64_t lo, int64_t hi) {
    const int64_t Cb = d->C / 16, r = d->r, R2 = r * r, H = d->H, W = d->W, Wr = W * r, Hr = H * r;
    const int act = d->act != SK_ACT_NONE, first = d->act_first;
    const float alpha = d->alpha, kin = sk_act_kin(d);
    for (int64_t u = lo; u < hi; u++) {
        int64_t n = u / Cb, cb = u % Cb;
        float m[16], rs[16], a[16], b[16], c1[16], c2[16], c3[16];
        for (int l = 0; l < 16; l++) {
            int64_t k = n * d->C + cb * 16 + l;
            m[l] = mean[k]; rs[l] = rstd[k]; a[l] = scale[k]; b[l] = shift[k];
            c1[l] = k1[k]; c2[l] = k2[k]; c3[l] = k3[k];
        }
        for (int64_t s = 0; s < R2; s++) {
            int64_t i = s / r, j = s % r;
            const float *plane = z + ((n * Cb * R2 + s * Cb + cb) * H) * W * 16;
            float *dplane = dz + ((n * Cb * R2 + s * Cb + cb) * H) * W * 16;
            const float *gplane = dy + ((n * Cb + cb) * Hr) * Wr * 16;
            for (int64_t h = 0; h < H; h++) {
                const float *row = plane + h * W * 16;
                float *drow = dplane + h * W * 16;
                const float *grow = gplane + ((h * r + i) * Wr + j) * 16;
                for (int64_t w = 0; w < W; w++) {
                    const float *v = row + w * 16, *gv = grow + w * r * 16;
                    float *o = drow + w * 16;
                    // dz may be written over dy (same layout, see sk_pw_backward_apply): read the
                    // pixel's gradient into registers first, so the loops below vectorise without
                    // aliasing checks.
                    float gl[16], out[16];
                    for (int l = 0; l < 16; l++) gl[l] = gv[l];
                    for (int l = 0; l < 16; l++) {
                        float x = v[l], g = gl[l], vin;
                        if (first) {
                            float grad = sk_act_both(x, act, alpha, kin, &vin);
                            float vhat = (vin - m[l]) * rs[l];
                            out[l] = (c1[l] * g + c2[l] * vhat + c3[l]) * grad;
                        } else {
                            g *= sk_act_grad(x * a[l] + b[l], act, alpha, kin);
                            float vhat = (x - m[l]) * rs[l];
                            out[l] = c1[l] * g + c2[l] * vhat + c3[l];
                        }
                    }
                    for (int l = 0; l < 16; l++) o[l] = out[l];
                }
            }
        }
    }
}
