/* libFuzzer target: the GGUF reader over arbitrary bytes, with the checksum
 * walk on, then every accessor over what it accepted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_gguf *g;
    sl_err err;
    if (sl_gguf_parse(data, size, SL_GGUF_VERIFY_CHECKSUM, &g, &err) != SL_OK)
        return 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const sl_gguf_kv *kv = &g->kv[i];
        double d;
        int64_t v;
        sl_gguf_kv_as_f64(kv, &d);
        sl_gguf_kv_as_i64(kv, &v);
        if (kv->type == SL_GGUF_ARRAY && kv->arr_n <= 4096) {
            void *buf = malloc((size_t)kv->arr_n * 16 + 16);
            if (buf) {
                sl_gguf_arr_strings(kv, buf, &err);
                sl_gguf_arr_f32(kv, buf, &err);
                sl_gguf_arr_i64(kv, buf, &err);
                free(buf);
            }
        }
        if (sl_gguf_find(g, kv->key) == NULL)
            __builtin_trap(); /* every key the reader accepted must be found */
    }
    volatile uint8_t sink = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sl_gguf_tensor *t = &g->tensors[i];
        if (sl_gguf_find_tensor(g, t->name) != t)
            __builtin_trap();
        if (t->nbytes) /* first and last byte: the range is inside the input */
            sink ^= t->data[0] ^ t->data[t->nbytes - 1];
    }
    (void)sink;
    sl_gguf_close(g);
    return 0;
}
