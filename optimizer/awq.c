/* awq.c - AWQ's scale search (sl_awq.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sl_blas.h"
#include "sl_awq.h"
#include "sl_grid.h"
#include "sl_types.h"

sl_status sl_rtn_roundtrip(uint32_t type, const float *W, int rows, int k, float *out, sl_err *err)
{
    const size_t span = (size_t)sl_grid_span(type), sub = (size_t)sl_grid_sub(type);
    if (!span || k % (int)span)
        return sl_err_set(err, SL_EUNSUPPORTED, "type %u has no grid for rows of %d", type, k);
    for (size_t b = 0; b < (size_t)rows * (size_t)k; b += span) {
        sl_grid g[16];
        sl_status st = sl_grid_make(type, W + b, NULL, g, err);
        if (st)
            return st;
        for (size_t j = 0; j < span; j++)
            out[b + j] = sl_grid_value(&g[j / sub], sl_grid_quant(&g[j / sub], W[b + j]));
    }
    return SL_OK;
}

#define AWQ_GRID 20

sl_status sl_awq_search(uint32_t type, const float *const *W, const int *rows, int n_mats, int k,
                        const sl_calib_slot *slot, float *s_out, float *alpha_out, double *err_out, double *err_rtn,
                        sl_err *err)
{
    if (!slot || slot->k != k || slot->n == 0 || slot->n_sample == 0)
        return sl_err_set(err, SL_EINVAL, "AWQ needs calibration inputs of width %d", k);
    const sl_blas_fns *L = sl_blas(err);
    if (!L)
        return SL_EUNSUPPORTED;
    int max_rows = 0;
    for (int i = 0; i < n_mats; i++)
        max_rows = rows[i] > max_rows ? rows[i] : max_rows;
    const int ns = slot->n_sample;
    float *ws = malloc(sizeof(float) * (size_t)max_rows * (size_t)k);
    float *wq = malloc(sizeof(float) * (size_t)max_rows * (size_t)k);
    float *y = malloc(sizeof(float) * (size_t)max_rows * (size_t)ns);
    float *base = malloc(sizeof(float) * (size_t)k), *s = malloc(sizeof(float) * (size_t)k);
    sl_status st = ws && wq && y && base && s ? SL_OK : sl_err_set(err, SL_ENOMEM, "out of memory for AWQ");
    /* the reference output energy, for a relative error */
    double ref = 0.0;
    for (int i = 0; i < n_mats && !st; i++) {
        L->sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows[i], ns, k, 1.0f, W[i], k, slot->sample, k, 0.0f, y,
                    ns);
        for (size_t t = 0; t < (size_t)rows[i] * (size_t)ns; t++)
            ref += (double)y[t] * y[t];
    }
    for (int j = 0; j < k && !st; j++) { /* mean |x|; a dead channel gets a tiny floor, not a zero */
        const double mean = slot->abs_sum[j] / (double)slot->n;
        base[j] = (float)(mean > 1e-8 ? mean : 1e-8);
    }
    double best = INFINITY;
    float best_alpha = 0.0f;
    for (int a = 0; a < AWQ_GRID && !st; a++) {
        const float alpha = (float)a / AWQ_GRID;
        double lmin = INFINITY, lmax = -INFINITY;
        for (int j = 0; j < k; j++) {
            s[j] = powf(base[j], alpha);
            lmin = fmin(lmin, log(s[j]));
            lmax = fmax(lmax, log(s[j]));
        }
        const float norm = (float)exp(-(lmin + lmax) / 2); /* geometric middle to 1 */
        for (int j = 0; j < k; j++)
            s[j] *= norm;
        double e = 0.0;
        for (int i = 0; i < n_mats && !st; i++) {
            const size_t n = (size_t)rows[i] * (size_t)k;
            for (size_t t = 0; t < n; t++)
                ws[t] = W[i][t] * s[t % (size_t)k];
            st = sl_rtn_roundtrip(type, ws, rows[i], k, wq, err);
            for (size_t t = 0; t < n && !st; t++) /* the quantized weights as the graph sees them, minus W */
                wq[t] = wq[t] / s[t % (size_t)k] - W[i][t];
            if (st)
                break;
            L->sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows[i], ns, k, 1.0f, wq, k, slot->sample, k, 0.0f, y,
                        ns);
            for (size_t t = 0; t < (size_t)rows[i] * (size_t)ns; t++)
                e += (double)y[t] * y[t];
        }
        if (a == 0 && err_rtn)
            *err_rtn = ref > 0 ? e / ref : 0.0;
        if (!st && e < best) {
            best = e;
            best_alpha = alpha;
            memcpy(s_out, s, sizeof(float) * (size_t)k);
        }
    }
    if (!st) {
        if (alpha_out)
            *alpha_out = best_alpha;
        if (err_out)
            *err_out = ref > 0 ? best / ref : 0.0;
    }
    free(ws);
    free(wq);
    free(y);
    free(base);
    free(s);
    return st;
}
