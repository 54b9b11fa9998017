/* import_gguf.c - a GGUF file (llama.cpp's or sluice's) as a model source:
 * metadata carried over as it is, tensors copied or converted. */
#include <string.h>

#include "sl_checksum.h"
#include "sl_model_src.h"

sl_status sl_import_gguf(const char *path, sl_model_src *m, sl_err *err)
{
    memset(m, 0, sizeof *m);
    sl_gguf *g;
    sl_status st = sl_gguf_open(path, SL_GGUF_VERIFY_CHECKSUM, &g, err);
    if (st)
        return st;
    m->owned_gguf = g;
    m->gguf = g;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sl_gguf_tensor *gt = &g->tensors[i];
        if (strlen(gt->name) >= sizeof m->tensors[0].name) {
            sl_model_src_free(m);
            return sl_err_set(err, SL_EUNSUPPORTED, "%s: tensor name '%.40s...' is longer than sluice keeps", path,
                              gt->name);
        }
        sl_src_tensor *t = sl_model_src_add(m, gt->name, gt->n_dims, gt->ne, err);
        if (!t) {
            sl_model_src_free(m);
            return SL_ENOMEM;
        }
        t->type = gt->type;
        t->data = gt->data;
    }
    sl_str ck;
    if (sl_gguf_get_str(g, "sluice.content_checksum", &ck, NULL) == SL_OK && ck.len < sizeof m->parent_checksum)
        snprintf(m->parent_checksum, sizeof m->parent_checksum, "%.*s", (int)ck.len, ck.ptr);
    else
        sl_gguf_compute_checksum(g, m->parent_checksum, NULL);
    const char *b = strrchr(path, '/');
    snprintf(m->source, sizeof m->source, "gguf:%s", b ? b + 1 : path);
    return SL_OK;
}
