/* quality_write.c - writing a verdict into an image (sl_quality_write.h). */
#include <string.h>

#include "sl_gguf_write.h"
#include "sl_quality_write.h"

sl_status sl_quality_write(const char *path, const sl_quality *q, sl_err *err)
{
    sl_gguf *g = NULL;
    sl_status st = sl_gguf_open(path, SL_GGUF_VERIFY_CHECKSUM, &g, err);
    if (st)
        return sl_err_prefix(err, st, "cannot rewrite '%s'", path);
    char before[SL_CHECKSUM_STRLEN + 1], after[SL_CHECKSUM_STRLEN + 1];
    st = sl_gguf_compute_checksum(g, before, err);
    if (!st && strcmp(before, q->candidate) != 0)
        st = sl_err_set(err, SL_ECHECKSUM, "'%s' is image %s, not the %s the verdict was measured on", path, before,
                        q->candidate);
    sl_gguf_writer *w = st ? NULL : sl_gw_new();
    if (!st && !w)
        st = sl_err_set(err, SL_ENOMEM, "out of memory");
    /* Everything as it was, less any earlier verdict; the writer adds the
     * alignment and the checksum itself. */
    for (uint64_t i = 0; i < (g ? g->n_kv : 0) && !st; i++) {
        const char *k = g->kv[i].key;
        if (strncmp(k, SL_QUALITY_PREFIX, strlen(SL_QUALITY_PREFIX)) == 0 || strcmp(k, "general.alignment") == 0 ||
            strcmp(k, "sluice.content_checksum") == 0)
            continue;
        st = sl_gw_copy_kv(w, &g->kv[i]);
    }
    if (!st) {
        sl_status s = SL_OK;
        s = s ? s : sl_gw_set_str(w, SL_QUALITY_PREFIX "verdict", q->pass ? "pass" : "fail");
        s = s ? s : sl_gw_set_str(w, SL_QUALITY_PREFIX "candidate_checksum", q->candidate);
        s = s ? s : sl_gw_set_str(w, SL_QUALITY_PREFIX "base_checksum", q->base);
        s = s ? s : sl_gw_set_str(w, SL_QUALITY_PREFIX "base", q->base_name);
        s = s ? s : sl_gw_set_str(w, SL_QUALITY_PREFIX "data", q->data);
        s = s ? s : sl_gw_set_str(w, SL_QUALITY_PREFIX "limits", q->limits);
        s = s ? s : sl_gw_set_str(w, SL_QUALITY_PREFIX "worst_layers", q->worst);
        s = s ? s : sl_gw_set_str(w, SL_QUALITY_PREFIX "time", q->time);
        s = s ? s : sl_gw_set_u64(w, SL_QUALITY_PREFIX "tokens", q->tokens);
        s = s ? s : sl_gw_set_f32(w, SL_QUALITY_PREFIX "ppl", (float)q->ppl);
        s = s ? s : sl_gw_set_f32(w, SL_QUALITY_PREFIX "base_ppl", (float)q->base_ppl);
        s = s ? s : sl_gw_set_f32(w, SL_QUALITY_PREFIX "ppl_ratio", (float)q->ppl_ratio);
        s = s ? s : sl_gw_set_f32(w, SL_QUALITY_PREFIX "kl_mean", (float)q->kl_mean);
        s = s ? s : sl_gw_set_f32(w, SL_QUALITY_PREFIX "kl_p99", (float)q->kl_p99);
        s = s ? s : sl_gw_set_f32(w, SL_QUALITY_PREFIX "top1", (float)q->top1);
        if (s)
            st = sl_err_set(err, SL_ENOMEM, "out of memory building the verdict");
    }
    for (uint64_t i = 0; i < (g ? g->n_tensors : 0) && !st; i++) {
        const sl_gguf_tensor *t = &g->tensors[i];
        st = sl_gw_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, err);
    }
    st = st ? st : sl_gw_write(w, path, after, err);
    if (!st && strcmp(before, after) != 0) /* the tensors were copied as they are: cannot happen */
        st = sl_err_set(err, SL_ECHECKSUM, "rewriting '%s' changed its content checksum (%s -> %s)", path, before,
                        after);
    sl_gw_free(w);
    sl_gguf_close(g);
    return st;
}
