/* calib.c - calibration statistics (sl_calib.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sl_blas.h"
#include "sl_calib.h"

const sl_linear_role sl_linear_roles[SL_LINEAR_ROLES] = {
    {"attn_q", SL_TAP_ATTN_IN}, {"attn_k", SL_TAP_ATTN_IN}, {"attn_v", SL_TAP_ATTN_IN}, {"attn_output", SL_TAP_WO_IN},
    {"ffn_gate", SL_TAP_FFN_IN}, {"ffn_up", SL_TAP_FFN_IN}, {"ffn_down", SL_TAP_DOWN_IN}};

static int slot_index(int layer, sl_tap_point at) { return layer * SL_TAP_COUNT + (int)at; }

static void calib_tap(void *ctx, int layer, sl_tap_point at, const float *x, int nt, int k)
{
    sl_calib *c = ctx;
    if (c->oom || layer < c->l0 || layer > c->l1)
        return;
    sl_calib_slot *s = &c->slots[slot_index(layer, at)];
    if (!s->k) {
        if (c->gram) {
            s->H = calloc((size_t)k * (size_t)k, sizeof *s->H);
            s->abs_sum = calloc((size_t)k, sizeof *s->abs_sum);
            s->abs_max = calloc((size_t)k, sizeof *s->abs_max);
        }
        s->sample = c->max_sample ? malloc(sizeof(float) * (size_t)c->max_sample * (size_t)k) : NULL;
        if ((c->gram && (!s->H || !s->abs_sum || !s->abs_max)) || (c->max_sample && !s->sample)) {
            c->oom = 1;
            return;
        }
        s->k = k;
    }
    if (c->gram) {
        /* H += X^T X (upper triangle; the lower is filled at the end) */
        sl_blas(NULL)->ssyrk(CblasRowMajor, CblasUpper, CblasTrans, k, nt, 1.0f, x, k, 1.0f, s->H, k);
        for (int t = 0; t < nt; t++) {
            const float *xt = x + (size_t)t * (size_t)k;
            for (int i = 0; i < k; i++) {
                s->abs_sum[i] += fabsf(xt[i]);
                s->abs_max[i] = fabsf(xt[i]) > s->abs_max[i] ? fabsf(xt[i]) : s->abs_max[i];
            }
        }
    }
    const int take = nt < c->max_sample - s->n_sample ? nt : c->max_sample - s->n_sample;
    if (take > 0) {
        memcpy(s->sample + (size_t)s->n_sample * (size_t)k, x, sizeof(float) * (size_t)take * (size_t)k);
        s->n_sample += take;
    }
    s->n += (uint64_t)nt;
}

uint64_t sl_calib_bytes(const sl_model *m, int l0, int l1, int max_sample)
{
    uint64_t b = 0;
    for (int l = l0; l <= l1; l++) {
        const uint64_t ks[4] = {(uint64_t)m->dim, (uint64_t)m->dim, (uint64_t)m->dim, (uint64_t)m->hidden};
        const int n = l < m->n_layers ? 4 : 1;
        for (int i = 0; i < n; i++)
            b += ks[i] * ks[i] * 4 + ks[i] * 12 + (uint64_t)max_sample * ks[i] * 4;
    }
    return b;
}

sl_status sl_calib_run(sl_engine *e, const sl_eval_seq *seqs, int n_seqs, int l0, int l1, int max_sample, bool gram,
                       sl_calib **out, sl_err *err)
{
    *out = NULL;
    if (gram && !sl_blas(err)) /* loaded here, so the tap's calls find it */
        return SL_EUNSUPPORTED;
    const sl_model *m = sl_engine_model(e);
    sl_calib *c = calloc(1, sizeof *c);
    if (!c)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    c->n_layers = m->n_layers;
    c->l0 = l0;
    c->l1 = l1;
    c->max_sample = max_sample;
    c->gram = gram;
    c->slots = calloc((size_t)(m->n_layers + 1) * SL_TAP_COUNT, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    sl_eval_result r;
    sl_engine_set_tap(e, calib_tap, c);
    sl_status st = sl_eval_run(e, NULL, seqs, n_seqs, &r, err);
    sl_engine_set_tap(e, NULL, NULL);
    if (!st && c->oom)
        st = sl_err_set(err, SL_ENOMEM, "out of memory for calibration statistics (layers %d..%d)", l0, l1);
    if (st) {
        sl_calib_free(c);
        return st;
    }
    for (int i = 0; gram && i < (m->n_layers + 1) * SL_TAP_COUNT; i++) {
        sl_calib_slot *s = &c->slots[i];
        for (int a = 0; a < s->k; a++)
            for (int b = 0; b < a; b++)
                s->H[(size_t)a * (size_t)s->k + (size_t)b] = s->H[(size_t)b * (size_t)s->k + (size_t)a];
    }
    *out = c;
    return SL_OK;
}

const sl_calib_slot *sl_calib_slot_for(const sl_calib *c, int layer, sl_tap_point at)
{
    if (!c || layer < c->l0 || layer > c->l1 || layer > c->n_layers)
        return NULL;
    const sl_calib_slot *s = &c->slots[slot_index(layer, at)];
    return s->k ? s : NULL;
}

void sl_calib_free(sl_calib *c)
{
    if (!c)
        return;
    for (int i = 0; c->slots && i < (c->n_layers + 1) * SL_TAP_COUNT; i++) {
        free(c->slots[i].H);
        free(c->slots[i].abs_sum);
        free(c->slots[i].abs_max);
        free(c->slots[i].sample);
    }
    free(c->slots);
    free(c);
}
