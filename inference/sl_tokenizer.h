/* sl_tokenizer.h - text <-> token ids for the vocabularies GGUF carries.
 *
 *  - `llama` (SentencePiece BPE, as llama2.c's run.c encodes): a dummy-prefix
 *    space before non-empty text, spaces as U+2581, pieces merged by best
 *    score (leftmost on ties), characters outside the vocabulary as
 *    <0xXX> byte tokens.
 *  - `gpt2` (byte-level BPE): GPT-2's pre-tokenizer regex (PCRE2, Unicode
 *    properties), bytes mapped to printable characters, merges by rank.
 *
 * Special tokens written in the text (`<s>`) are plain text, as in run.c. */
#ifndef SL_TOKENIZER_H
#define SL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_error.h"
#include "sl_gguf.h"

/* GGUF token types (tokenizer.ggml.token_type). */
enum { SL_TOK_NORMAL = 1, SL_TOK_UNKNOWN = 2, SL_TOK_CONTROL = 3, SL_TOK_USER = 4, SL_TOK_UNUSED = 5, SL_TOK_BYTE = 6 };

/* True for a byte-fallback piece "<0xHH>". */
bool sl_is_byte_piece(const char *s, uint64_t len);

typedef enum sl_tok_kind { SL_TOK_SPM, SL_TOK_GPT2 } sl_tok_kind;

typedef struct sl_tokenizer sl_tokenizer;

/* Builds the tokenizer of g's tokenizer.ggml.* keys; g must outlive it. */
sl_status sl_tokenizer_from_gguf(const sl_gguf *g, sl_tokenizer **out, sl_err *err);
void sl_tokenizer_free(sl_tokenizer *t);

sl_tok_kind sl_tok_kind_of(const sl_tokenizer *t);
int sl_tok_vocab_size(const sl_tokenizer *t);
int sl_tok_bos(const sl_tokenizer *t); /* -1 if none */
int sl_tok_eos(const sl_tokenizer *t);
/* tokenizer.ggml.add_bos_token, defaulting to true for llama, false for gpt2. */
bool sl_tok_add_bos(const sl_tokenizer *t);

/* Encodes len bytes of text (any bytes: invalid UTF-8 is byte-encoded)
 * into a malloc'd array of ids, BOS first when add_bos. */
sl_status sl_tok_encode(const sl_tokenizer *t, const char *text, size_t len, bool add_bos, int32_t **ids, size_t *n,
                        sl_err *err);

/* The bytes token `tok` stands for when it follows `prev` (-1 at the start):
 * U+2581 becomes a space, <0xXX> its byte, control tokens nothing, and for
 * `llama` the space that begins the piece after BOS is dropped (run.c's
 * rule).  Writes at most cap bytes, returns the full length; an id outside
 * the vocabulary gives 0. */
size_t sl_tok_piece(const sl_tokenizer *t, int32_t prev, int32_t tok, char *buf, size_t cap);

#endif
