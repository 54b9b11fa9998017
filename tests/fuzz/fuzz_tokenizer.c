/* libFuzzer target: both tokenizers on arbitrary bytes.  Besides memory
 * errors (ASan/UBSan) it checks the round trip: decoding the ids gives the
 * input back (after SPM's dummy-prefix space).  The vocabularies come from
 * ../shared/models/vocab (or $SLUICE_SHARED/models/vocab). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_gguf.h"
#include "sl_tokenizer.h"

static sl_gguf *g[2];
static sl_tokenizer *tk[2];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *names[2] = {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"};
    const char *env = getenv("SLUICE_SHARED");
    for (int i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/models/vocab/%s", env ? env : SL_SOURCE_DIR "/../shared", names[i]);
        sl_err err = {0};
        if (sl_gguf_open(path, 0, &g[i], &err) || sl_tokenizer_from_gguf(g[i], &tk[i], &err)) {
            fprintf(stderr, "fuzz_tokenizer: %s (set SLUICE_SHARED to the folder holding models/)\n", err.msg);
            abort();
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    const sl_tokenizer *t = tk[data[0] & 1];
    const char *text = (const char *)data + 1;
    const size_t len = size - 1;
    int32_t *ids;
    size_t n;
    if (sl_tok_encode(t, text, len, true, &ids, &n, NULL) != SL_OK)
        abort(); /* any bytes must encode */
    char *back = malloc(len + 16), piece[512];
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= sl_tok_vocab_size(t))
            abort();
        size_t k = sl_tok_piece(t, i ? ids[i - 1] : -1, ids[i], piece, sizeof piece);
        if (k > sizeof piece || at + k > len + 16)
            abort();
        memcpy(back + at, piece, k);
        at += k;
    }
    /* SPM: BOS, then the pieces; the first piece's leading space is the
     * dummy prefix, dropped after BOS.  U+2581 in the input decodes as a
     * space, so such inputs are only checked for memory safety. */
    if (!memmem(text, len, "\xe2\x96\x81", 3) && (at != len || memcmp(back, text, len) != 0))
        abort();
    free(back);
    free(ids);
    return 0;
}
