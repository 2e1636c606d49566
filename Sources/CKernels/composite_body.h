// Glimpse compositing, the per-ISA part (included by composite.c through sk_multiversion.h): the
// forward pass over one image's cells with the bilinear sampling split in two and every inner loop
// running along a canvas row, so it vectorises.
//
// A cell's box is rows [i0, i1) times columns [j0, j1). Bilinear sampling is separable: first every
// padded glimpse row the box's rows tap is interpolated at the box's columns (the horizontal pass,
// a short gather from a row of Wg + 3 floats), then each canvas row is the blend of two of those
// interpolated rows (the vertical pass, contiguous in the column). The online softmax then runs on
// whole canvas rows: per pixel the new max is max(m, I), the running sums are rescaled by
// exp(m - max) and the cell weighs exp(I - max); one of the two exponents is exp(0) = 1 exactly, so
// this is the same arithmetic as the scalar form that branches on which one is new.

// One cell of one image: pastes its planes (padded in s->pad) into the running max m, denominator d
// and numerators out, inside its box. The box's taps are in s->rows / s->cols.
static void SK_VERSIONED(paste_cell)(float *restrict out, float *restrict m, float *restrict d, const scratch *s,
                                     int64_t Cv, int64_t Cs, int64_t Hg, int64_t Wg, int64_t H, int64_t W,
                                     int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const int64_t HW = H * W, Wp = Wg + 3, P = (Hg + 3) * Wp, CP = 1 + Cv + Cs, Wb = j1 - j0;
    int32_t *restrict coff = s->coff;
    float *restrict cw0 = s->cw0, *restrict cw1 = s->cw1, *restrict tsc = s->tsc, *restrict te = s->te;
    for (int64_t k = 0; k < Wb; k++) {
        coff[k] = s->cols[j0 + k].off;
        cw0[k] = s->cols[j0 + k].w0;
        cw1[k] = s->cols[j0 + k].w1;
    }
    // The padded rows the box's rows tap: [rlo, rhi] (taps are monotone in the row).
    int32_t rlo = s->rows[i0].off, rhi = s->rows[i0].off;
    for (int64_t i = i0; i < i1; i++) {
        const int32_t o = s->rows[i].off;
        rlo = o < rlo ? o : rlo;
        rhi = o > rhi ? o : rhi;
    }
    rhi += 1;
    const int64_t R = rhi - rlo + 1;

    // Horizontal pass: hbuf[(c * R + r) * Wb + k] = plane c, padded row rlo + r, at box column k.
    float *restrict hbuf = s->hbuf;
    for (int64_t c = 0; c < CP; c++)
        for (int64_t r = 0; r < R; r++) {
            const float *restrict src = s->pad + c * P + (rlo + r) * Wp;
            float *restrict h = hbuf + (c * R + r) * Wb;
            for (int64_t k = 0; k < Wb; k++) h[k] = cw0[k] * src[coff[k]] + cw1[k] * src[coff[k] + 1];
        }

    // Vertical pass and online softmax, one canvas row at a time.
    for (int64_t i = i0; i < i1; i++) {
        const axis_tap ry = s->rows[i];
        const float w0 = ry.w0, w1 = ry.w1;
        const int64_t a = ry.off - rlo, p0 = i * W + j0;
        const float *restrict h0 = hbuf + a * Wb, *restrict h1 = h0 + Wb;
        float *restrict mrow = m + p0, *restrict drow = d + p0;
        for (int64_t k = 0; k < Wb; k++) {
            const float imp = w0 * h0[k] + w1 * h1[k];
            const float mo = mrow[k], mn = imp > mo ? imp : mo;
            const float sc = sk_fast_expf(mo - mn), e = sk_fast_expf(imp - mn);
            mrow[k] = mn;
            drow[k] = drow[k] * sc + e;
            tsc[k] = sc;
            te[k] = e;
        }
        for (int64_t c = 0; c < Cv; c++) {
            const float *restrict v0 = hbuf + ((1 + c) * R + a) * Wb, *restrict v1 = v0 + Wb;
            float *restrict o = out + c * HW + p0;
            for (int64_t k = 0; k < Wb; k++) o[k] = o[k] * tsc[k] + te[k] * (w0 * v0[k] + w1 * v1[k]);
        }
        for (int64_t c = 0; c < Cs; c++) {
            const float *restrict v0 = hbuf + ((1 + Cv + c) * R + a) * Wb, *restrict v1 = v0 + Wb;
            float *restrict o = out + (Cv + c) * HW + p0;
            for (int64_t k = 0; k < Wb; k++) o[k] += w0 * v0[k] + w1 * v1[k];
        }
    }
}

// Step 4 of the forward pass: the numerators divided by the denominators.
static void SK_VERSIONED(normalise_image)(float *restrict out, const float *restrict d, int64_t Cv, int64_t HW) {
    for (int64_t c = 0; c < Cv; c++) {
        float *restrict o = out + c * HW;
        for (int64_t p = 0; p < HW; p++) o[p] = o[p] / d[p];
    }
}
