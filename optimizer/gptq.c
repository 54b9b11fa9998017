/* gptq.c - GPTQ quantization of one matrix (sl_gptq.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sl_blas.h"
#include "sl_gptq.h"
#include "sl_grid.h"
#include "sl_types.h"

/* U = the upper Cholesky factor of H^-1, in place over H (the lower part
 * is left as garbage).  LAPACK's factorizations; false when H is not
 * positive definite. */
static bool inverse_cholesky_upper(const sl_blas_fns *L, float *H, int k)
{
    if (L->spotrf(LAPACK_ROW_MAJOR, 'L', k, H, k) != 0)
        return false;
    if (L->spotri(LAPACK_ROW_MAJOR, 'L', k, H, k) != 0)
        return false;
    for (int i = 0; i < k; i++) /* spotri fills one triangle */
        for (int j = i + 1; j < k; j++)
            H[(size_t)i * k + j] = H[(size_t)j * k + i];
    return L->spotrf(LAPACK_ROW_MAJOR, 'U', k, H, k) == 0;
}

static int by_diag_desc(const void *a, const void *b, void *ctx)
{
    const float *d = ctx;
    const float x = d[*(const int *)a], y = d[*(const int *)b];
    return x > y ? -1 : x < y ? 1 : (*(const int *)a - *(const int *)b);
}

sl_status sl_gptq_quantize(uint32_t type, float *W, int rows, int k, float *H, const sl_gptq_opts *o, void *out,
                           sl_err *err)
{
    const int span = sl_grid_span(type), sub = sl_grid_sub(type);
    if (!span || k % span || rows <= 0)
        return sl_err_set(err, SL_EUNSUPPORTED, "GPTQ needs a type with grids and rows of whole blocks (%d)", span);
    const sl_blas_fns *L = sl_blas(err);
    if (!L)
        return SL_EUNSUPPORTED;
    const float damp = o && o->damp > 0 ? o->damp : 0.01f;
    const int B = o && o->block > 0 ? o->block : 128;
    const bool act = o && o->act_order;
    const size_t kk = (size_t)k * (size_t)k;
    const int nb = k / sub; /* grids per row */
    float *H0 = malloc(sizeof(float) * kk), *E = malloc(sizeof(float) * (size_t)rows * (size_t)B);
    int *perm = malloc(sizeof(int) * (size_t)k);
    float *diag = malloc(sizeof(float) * (size_t)k), *tmp = act ? malloc(sizeof(float) * kk) : NULL; /* permutes */
    sl_grid *grids = malloc(sizeof(sl_grid) * (size_t)rows * (size_t)nb);
    int8_t *q = malloc((size_t)rows * (size_t)k);
    sl_status st = H0 && E && perm && diag && (tmp || !act) && grids && q
                       ? SL_OK
                       : sl_err_set(err, SL_ENOMEM, "out of memory for GPTQ (k = %d)", k);
    if (st)
        goto out;
    /* Dead inputs (never nonzero in calibration) carry no information:
     * their weights are zeroed and H kept invertible. */
    for (int j = 0; j < k; j++)
        if (H[(size_t)j * k + j] == 0.0f) {
            H[(size_t)j * k + j] = 1.0f;
            for (int r = 0; r < rows; r++)
                W[(size_t)r * k + j] = 0.0f;
        }
    /* Static grids for act-order come from the weights as given. */
    if (act)
        for (int r = 0; r < rows && !st; r++)
            for (int b = 0; b < k / span && !st; b++)
                st = sl_grid_make(type, W + (size_t)r * k + (size_t)b * span, NULL,
                                  &grids[(size_t)r * nb + (size_t)b * (span / sub)], err);
    for (int j = 0; j < k; j++) {
        perm[j] = j;
        diag[j] = H[(size_t)j * k + j];
    }
    if (act) {
        qsort_r(perm, (size_t)k, sizeof *perm, by_diag_desc, diag);
        for (int a = 0; a < k; a++) /* H and W columns into the new order */
            for (int b = 0; b < k; b++)
                tmp[(size_t)a * k + b] = H[(size_t)perm[a] * k + perm[b]];
        memcpy(H, tmp, sizeof(float) * kk);
        for (int r = 0; r < rows; r++) {
            float *w = W + (size_t)r * k;
            for (int j = 0; j < k; j++)
                tmp[j] = w[perm[j]];
            memcpy(w, tmp, sizeof(float) * (size_t)k);
        }
    }
    memcpy(H0, H, sizeof(float) * kk);
    double mean = 0.0;
    for (int j = 0; j < k; j++)
        mean += H[(size_t)j * k + j];
    mean /= k;
    /* Damping grows tenfold until the factorization succeeds. */
    bool ok = false;
    for (int tries = 0; tries < 6 && !st && !ok; tries++) {
        memcpy(H, H0, sizeof(float) * kk);
        const float lambda = (float)(damp * pow(10.0, tries) * (mean > 0 ? mean : 1.0));
        for (int j = 0; j < k; j++)
            H[(size_t)j * k + j] += lambda;
        ok = inverse_cholesky_upper(L, H, k);
    }
    if (!st && !ok)
        st = sl_err_set(err, SL_ERANGE, "the input Hessian (k = %d) stays singular with damping up to 1000x", k);
    const float *U = H;
    for (int i1 = 0; i1 < k && !st; i1 += B) {
        const int i2 = i1 + B < k ? i1 + B : k, w = i2 - i1;
        for (int j = i1; j < i2 && !st; j++) {
            const int p = perm[j], b = p / sub;
            /* in natural order a span's grids are set when its first column
             * comes up, from the weights as updated so far */
            if (!act && p % span == 0)
                for (int r = 0; r < rows && !st; r++)
                    st = sl_grid_make(type, W + (size_t)r * k + j, NULL, &grids[(size_t)r * nb + b], err);
            const float ujj = U[(size_t)j * k + j];
            for (int r = 0; r < rows && !st; r++) {
                float *wr = W + (size_t)r * k;
                const sl_grid *g = &grids[(size_t)r * nb + b];
                const int qi = sl_grid_quant(g, wr[j]);
                q[(size_t)r * k + p] = (int8_t)qi;
                const float e = (wr[j] - sl_grid_value(g, qi)) / ujj;
                const float *uj = U + (size_t)j * k;
                for (int c = j + 1; c < i2; c++)
                    wr[c] -= e * uj[c];
                E[(size_t)r * w + (j - i1)] = e;
            }
        }
        if (!st && i2 < k) /* the block's errors onto every later column at once */
            L->sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, k - i2, w, -1.0f, E, w,
                        U + (size_t)i1 * k + i2, k, 1.0f, W + i2, k);
    }
    const sl_type_traits *tt = sl_type_get(type);
    const size_t span_bytes = (size_t)tt->block_bytes * (size_t)(span / (int)tt->block_elems);
    for (int r = 0; r < rows && !st; r++)
        for (int b = 0; b < k / span; b++)
            sl_grid_pack(type, &grids[(size_t)r * nb + (size_t)b * (span / sub)], q + (size_t)r * k + (size_t)b * span,
                         (uint8_t *)out + ((size_t)r * (k / span) + b) * span_bytes);
out:
    free(H0);
    free(E);
    free(perm);
    free(diag);
    free(tmp);
    free(grids);
    free(q);
    return st;
}

#define ERR_ROWS 512 /* rows per product: bounded scratch for a 32000-row classifier */

void sl_output_error_parts(const float *W, const float *Wq, int rows, int k, const float *H, double *num, double *den)
{
    /* sum_r d_r H d_r^T and sum_r w_r H w_r^T (d = Wq - W), a block of rows
     * per matrix product: (D H) . D summed */
    const int br = rows < ERR_ROWS ? rows : ERR_ROWS;
    float *d = malloc(sizeof(float) * (size_t)br * (size_t)k), *dh = malloc(sizeof(float) * (size_t)br * (size_t)k);
    const sl_blas_fns *L = sl_blas(NULL); /* loaded by the calibration that made H */
    *num = *den = 0.0;
    if (!d || !dh || !L) {
        free(d);
        free(dh);
        *num = NAN;
        return;
    }
    for (int r0 = 0; r0 < rows; r0 += br) {
        const int n = rows - r0 < br ? rows - r0 : br;
        const size_t off = (size_t)r0 * (size_t)k, cnt = (size_t)n * (size_t)k;
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < cnt; i++)
                d[i] = pass ? W[off + i] : Wq[off + i] - W[off + i];
            L->ssymm(CblasRowMajor, CblasRight, CblasUpper, n, k, 1.0f, H, k, d, k, 0.0f, dh, k);
            double s = 0.0;
            for (size_t i = 0; i < cnt; i++)
                s += (double)d[i] * dh[i];
            *(pass ? den : num) += s;
        }
    }
    free(d);
    free(dh);
}

double sl_output_error(const float *W, const float *Wq, int rows, int k, const float *H)
{
    double num, den;
    sl_output_error_parts(W, Wq, rows, k, H, &num, &den);
    return den > 0 ? num / den : 0.0;
}
