/* sl_model_src.h - a model on its way into a sluice image.
 *
 * Every importer (llama2.c, llama2.c Q8 "ak42", Hugging Face safetensors,
 * GGUF) and `sluice synth` describe what they found as an sl_model_src:
 * Llama hyper-parameters, a vocabulary, and tensors whose rows can be read
 * as floats (or copied as they are).  sl_model_write turns that into a GGUF
 * image of the requested type through the per-tensor type policy. */
#ifndef SL_MODEL_SRC_H
#define SL_MODEL_SRC_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sl_error.h"
#include "sl_file.h"
#include "sl_gguf.h"
#include "sl_tokenizer.h" /* token types */

#define SL_TYPE_KEEP UINT32_MAX /* "store each tensor in its source type" */

typedef struct sl_llama_hparams {
    uint32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, ctx;
    float rms_eps, rope_theta;
    bool tied; /* classifier shares the token embedding */
} sl_llama_hparams;

typedef struct sl_vocab {
    const char *model;  /* "llama" (SentencePiece-style) or "gpt2" (byte-level BPE) */
    uint32_t n;
    sl_str *tokens;
    float *scores;      /* may be NULL */
    int32_t *types;
    uint64_t n_merges;
    sl_str *merges;     /* gpt2 only */
    int64_t bos, eos, unk; /* -1 when absent */
    char *arena;        /* owns the token and merge bytes */
} sl_vocab;

struct sl_src_tensor;
/* Produces rows [row0, row0+n) of a tensor as floats (ne[0] per row). */
typedef sl_status (*sl_rows_fn)(const struct sl_src_tensor *t, uint64_t row0, uint64_t n, float *dst, sl_err *err);

typedef struct sl_src_tensor {
    char name[96];           /* GGUF name: "blk.0.attn_q.weight" */
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;           /* type of the bytes at data (when rows is NULL) */
    const uint8_t *data;
    uint32_t perm_heads;     /* >0: rows are in Hugging Face half-split RoPE order
                                for this many heads; they are stored as adjacent pairs */
    sl_rows_fn rows;         /* else: a producer of float rows */
    const void *ctx;         /* for rows */
    const uint8_t *scales;   /* ak42: per-group f32 scales of int8 data (unaligned) */
    uint32_t group;          /* ak42: group size along the flattened tensor */
} sl_src_tensor;

typedef struct sl_model_src {
    sl_llama_hparams hp;
    sl_vocab vocab;
    bool has_vocab;
    const sl_gguf *gguf;     /* GGUF source: its metadata is carried over */
    sl_src_tensor *tensors;
    uint32_t n_tensors;
    char name[128];          /* general.name */
    char source[256];        /* what it came from, for sluice.source */
    char parent_checksum[64];/* sluice.parent_checksum */
    /* resources to release */
    sl_map maps[64];
    int n_maps;
    void **owned;        /* buffers the tensors point into (quantized or rescaled ones) */
    int n_owned, cap_owned;
    sl_gguf *owned_gguf;
} sl_model_src;

void sl_model_src_free(sl_model_src *m);
sl_status sl_model_src_add_map(sl_model_src *m, const char *path, const sl_map **out, sl_err *err);
/* Hands p (malloc'd) to m, freed with it; p is freed at once on failure. */
sl_status sl_model_src_own(sl_model_src *m, void *p, sl_err *err);
sl_src_tensor *sl_model_src_add(sl_model_src *m, const char *name, uint32_t n_dims, const uint64_t *ne, sl_err *err);

/* Importers.  Each validates its input completely (sizes, counts, shapes)
 * before any tensor is read. */
sl_status sl_import_llama2c(const char *ckpt, const char *tokenizer, sl_model_src *m, sl_err *err);
sl_status sl_import_ak42(const char *ckpt, const char *tokenizer, sl_model_src *m, sl_err *err);
sl_status sl_import_hf(const char *dir, sl_model_src *m, sl_err *err);
sl_status sl_import_gguf(const char *path, sl_model_src *m, sl_err *err);
/* Reads a llama2.c tokenizer.bin with vocab_size entries into a GGUF
 * `llama` vocabulary (spaces become U+2581, BOS/EOS pieces <s> </s>). */
sl_status sl_vocab_from_llama2c(const char *path, uint32_t vocab_size, sl_vocab *v, sl_err *err);
/* Reads a Hugging Face tokenizer.json (BPE with byte fallback -> `llama`,
 * byte-level BPE -> `gpt2`). */
sl_status sl_vocab_from_hf(const char *path, uint32_t vocab_size, sl_vocab *v, sl_err *err);
void sl_vocab_free(sl_vocab *v);

/* Row r of a tensor (in output order: RoPE rows permuted for Hugging Face
 * sources) as ne[0] floats, whatever the source holds. */
sl_status sl_src_row_f32(const sl_src_tensor *t, uint64_t r, float *out, sl_err *err);

/* The per-tensor type policy: 1-D tensors (norms) stay f32; a matrix whose
 * rows are not whole blocks of the requested type falls back to f16.  why
 * receives a short reason when the result differs from the request. */
uint32_t sl_policy_type(uint32_t requested, const sl_src_tensor *t, uint32_t src_type, const char **why);

typedef struct sl_write_opts {
    uint32_t type;           /* a ggml type id or SL_TYPE_KEEP */
    const char *recipe;      /* sluice.recipe, e.g. "convert --type q8_0" */
    FILE *report;            /* per-tensor fallbacks are listed here (may be NULL) */
    const uint32_t *types;   /* per tensor, decided by the caller (NULL: `type` through the policy) */
} sl_write_opts;

/* Writes m as a GGUF image at path (atomically); checksum_out may be NULL. */
sl_status sl_model_write(const sl_model_src *m, const char *path, const sl_write_opts *o, char *checksum_out,
                         sl_err *err);

/* llama.cpp's general.file_type for an image whose weights are mostly `type`. */
uint32_t sl_llama_ftype(uint32_t type);

#endif
