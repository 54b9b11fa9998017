/* kv_cache.c - the paged KV pool (sl_kv.h). */
#include <stdlib.h>
#include <string.h>

#include "sl_kv.h"

sl_status sl_kv_init(sl_kv *kv, int n_layers, int n_heads, int head_dim, int max_ctx, int n_blocks, int max_seqs,
                     int node, sl_err *err)
{
    memset(kv, 0, sizeof *kv);
    if (n_layers <= 0 || n_heads <= 0 || head_dim <= 0 || max_ctx <= 0 || n_blocks <= 0 || max_seqs <= 0)
        return sl_err_set(err, SL_EINVAL, "KV cache: every size must be positive");
    kv->n_layers = n_layers;
    kv->n_heads = n_heads;
    kv->head_dim = head_dim;
    kv->max_ctx = max_ctx;
    kv->n_blocks = n_blocks;
    kv->max_seqs = max_seqs;
    kv->max_blocks_per_seq = sl_kv_blocks_for(max_ctx);
    kv->block_floats = (size_t)n_layers * 2 * SL_KV_BLOCK * (size_t)n_heads * (size_t)head_dim;
    size_t bytes = kv->block_floats * sizeof(float);
    if (bytes / sizeof(float) != kv->block_floats || (size_t)n_blocks > SIZE_MAX / bytes)
        return sl_err_set(err, SL_ERANGE, "KV cache of %d blocks overflows", n_blocks);
    sl_status st = sl_buf_alloc(&kv->mem, bytes * (size_t)n_blocks, node, err);
    if (st)
        return sl_err_prefix(err, st, "KV cache (%d blocks of %zu bytes)", n_blocks, bytes);
    kv->free_list = malloc(sizeof *kv->free_list * (size_t)n_blocks);
    kv->seqs = calloc((size_t)max_seqs, sizeof *kv->seqs);
    int32_t *tables = malloc(sizeof *tables * (size_t)max_seqs * (size_t)kv->max_blocks_per_seq);
    if (!kv->free_list || !kv->seqs || !tables) {
        free(tables);
        sl_kv_free(kv);
        return sl_err_set(err, SL_ENOMEM, "out of memory for KV block tables");
    }
    for (int s = 0; s < max_seqs; s++)
        kv->seqs[s].table = tables + (size_t)s * (size_t)kv->max_blocks_per_seq;
    /* Hand out low block ids first: pushed in reverse onto the stack. */
    for (int b = 0; b < n_blocks; b++)
        kv->free_list[b] = n_blocks - 1 - b;
    kv->n_free = n_blocks;
    return SL_OK;
}

void sl_kv_free(sl_kv *kv)
{
    sl_buf_free(&kv->mem);
    free(kv->free_list);
    if (kv->seqs)
        free(kv->seqs[0].table);
    free(kv->seqs);
    memset(kv, 0, sizeof *kv);
}

sl_status sl_kv_seq_new(sl_kv *kv, int *seq, sl_err *err)
{
    for (int s = 0; s < kv->max_seqs; s++)
        if (!kv->seqs[s].in_use) {
            kv->seqs[s].in_use = 1;
            kv->seqs[s].n_blocks = 0;
            *seq = s;
            return SL_OK;
        }
    return sl_err_set(err, SL_ERANGE, "all %d KV sequence slots are in use", kv->max_seqs);
}

sl_status sl_kv_seq_reserve(sl_kv *kv, int seq, int n_pos, sl_err *err)
{
    if (seq < 0 || seq >= kv->max_seqs || !kv->seqs[seq].in_use)
        return sl_err_set(err, SL_EINVAL, "KV sequence %d is not live", seq);
    if (n_pos > kv->max_ctx)
        return sl_err_set(err, SL_ERANGE, "%d positions exceed the context of %d", n_pos, kv->max_ctx);
    sl_kv_seq *s = &kv->seqs[seq];
    int need = sl_kv_blocks_for(n_pos) - s->n_blocks;
    if (need <= 0)
        return SL_OK;
    if (need > kv->n_free)
        return sl_err_set(err, SL_ERANGE, "KV pool exhausted: %d more blocks needed, %d of %d free", need,
                          kv->n_free, kv->n_blocks);
    while (need--)
        s->table[s->n_blocks++] = kv->free_list[--kv->n_free];
    return SL_OK;
}

void sl_kv_seq_free(sl_kv *kv, int seq)
{
    if (seq < 0 || seq >= kv->max_seqs || !kv->seqs[seq].in_use)
        return;
    sl_kv_seq *s = &kv->seqs[seq];
    while (s->n_blocks)
        kv->free_list[kv->n_free++] = s->table[--s->n_blocks];
    s->in_use = 0;
}
