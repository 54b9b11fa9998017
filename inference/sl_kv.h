/* sl_kv.h - paged KV cache: a bounded pool of fixed-size blocks, and per
 * sequence a block table mapping positions to blocks.
 *
 * A block holds SL_KV_BLOCK positions of every layer's keys and values,
 * float32, laid out [layer][k|v][kv head][position][head_dim]: one head's
 * 16 positions are 16 * head_dim consecutive floats (4 KiB at head_dim 64),
 * which attention streams through in order.  Blocks are taken when a
 * sequence grows into them and all returned when it is freed. */
#ifndef SL_KV_H
#define SL_KV_H

#include <stdint.h>

#include "sl_error.h"
#include "sl_numa_mem.h"

#define SL_KV_BLOCK 16 /* positions per block */

typedef struct sl_kv_seq {
    int in_use;
    int n_blocks;  /* blocks held */
    int32_t *table; /* [max_blocks_per_seq] */
} sl_kv_seq;

typedef struct sl_kv {
    int n_layers, n_heads, head_dim, max_ctx; /* n_heads: KV heads */
    int n_blocks, n_free;
    size_t block_floats;
    sl_buf mem;          /* n_blocks * block_floats */
    int32_t *free_list;  /* stack of free block ids */
    int max_seqs, max_blocks_per_seq;
    sl_kv_seq *seqs;
} sl_kv;

/* A pool of n_blocks blocks for up to max_seqs sequences of at most
 * max_ctx positions, n_heads KV heads of head_dim, on NUMA node `node`
 * (-1: anywhere). */
sl_status sl_kv_init(sl_kv *kv, int n_layers, int n_heads, int head_dim, int max_ctx, int n_blocks, int max_seqs,
                     int node, sl_err *err);
void sl_kv_free(sl_kv *kv);

/* Blocks needed for n positions. */
static inline int sl_kv_blocks_for(int n) { return (n + SL_KV_BLOCK - 1) / SL_KV_BLOCK; }

/* A fresh sequence id (SL_ERANGE when all max_seqs are in use). */
sl_status sl_kv_seq_new(sl_kv *kv, int *seq, sl_err *err);
/* Makes room for positions [0, n_pos): SL_ERANGE past max_ctx or when the
 * pool has too few free blocks (the sequence keeps what it had). */
sl_status sl_kv_seq_reserve(sl_kv *kv, int seq, int n_pos, sl_err *err);
/* Returns every block of the sequence to the pool and retires the id. */
void sl_kv_seq_free(sl_kv *kv, int seq);

/* Key / value vector of (seq, layer, KV head, pos); the position must be
 * reserved.  The block's later positions follow head_dim floats apart. */
static inline float *sl_kv_k(const sl_kv *kv, int seq, int layer, int head, int pos)
{
    const int32_t b = kv->seqs[seq].table[pos / SL_KV_BLOCK];
    return (float *)kv->mem.p + (size_t)b * kv->block_floats +
           (((size_t)layer * 2 * (size_t)kv->n_heads + (size_t)head) * SL_KV_BLOCK + (size_t)(pos % SL_KV_BLOCK)) *
               (size_t)kv->head_dim;
}
static inline float *sl_kv_v(const sl_kv *kv, int seq, int layer, int head, int pos)
{
    return sl_kv_k(kv, seq, layer, head, pos) + (size_t)kv->n_heads * SL_KV_BLOCK * (size_t)kv->head_dim;
}

#endif
