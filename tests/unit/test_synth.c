/* sluice synth: real shapes, every type, seeded and reproducible. */
#include <criterion/criterion.h>
#include <math.h>

#include "sl_checksum.h"
#include "sl_gguf.h"
#include "sl_model_src.h"
#include "sl_synth.h"
#include "sl_types.h"
#include "test_support.h"

static uint64_t param_count(const sl_model_src *m)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < m->n_tensors; i++)
        n += m->tensors[i].ne[0] * m->tensors[i].ne[1];
    return n;
}

Test(synth, shapes_have_the_published_parameter_counts)
{
    struct { const char *name; uint64_t lo, hi; } k[] = {
        {"110m", 109000000, 111000000}, /* stories110M: 110M with a tied classifier */
        {"1b", 1090000000, 1110000000}, /* TinyLlama-1.1B: 1,100,048,384 */
        {"8b", 8020000000, 8040000000}, /* Llama-3-8B: 8,030,261,248 */
    };
    for (size_t i = 0; i < 3; i++) {
        sl_model_src m;
        sl_err err;
        cr_assert_eq(sl_synth_model(sl_synth_find(k[i].name), 1, &m, &err), SL_OK);
        uint64_t n = param_count(&m);
        cr_assert(n >= k[i].lo && n <= k[i].hi, "%s: %llu parameters", k[i].name, (unsigned long long)n);
        sl_model_src_free(&m);
    }
    cr_assert_null(sl_synth_find("70b"));
}

Test(synth, every_type_writes_reopens_and_is_reproducible)
{
    char *dir = test_tmpdir();
    const uint32_t types[] = {SL_TYPE_F32, SL_TYPE_F16, SL_TYPE_BF16, SL_TYPE_Q8_0, SL_TYPE_Q4_0, SL_TYPE_Q4_1};
    for (size_t i = 0; i < 6; i++) {
        char sums[3][SL_CHECKSUM_STRLEN + 1];
        for (int run = 0; run < 3; run++) {
            sl_model_src m;
            sl_err err;
            cr_assert_eq(sl_synth_model(sl_synth_find("tiny"), run == 2 ? 2 : 1, &m, &err), SL_OK);
            sl_write_opts o = {.type = types[i], .recipe = "synth"};
            const char *path = test_path(dir, "t.gguf");
            cr_assert_eq(sl_model_write(&m, path, &o, sums[run], &err), SL_OK, "%s", err.msg);
            sl_model_src_free(&m);
            sl_gguf *g;
            cr_assert_eq(sl_gguf_open(path, SL_GGUF_VERIFY_CHECKSUM, &g, &err), SL_OK, "%s", err.msg);
            const sl_gguf_tensor *q = sl_gguf_find_tensor(g, "blk.3.attn_q.weight");
            cr_assert_eq(q->type, types[i]);
            cr_assert_eq(sl_gguf_find_tensor(g, "blk.0.attn_norm.weight")->type, SL_TYPE_F32);
            /* Weights look like N(0, 0.02): check the spread of one matrix. */
            float *row = malloc(q->ne[0] * sizeof(float));
            uint64_t rb;
            cr_assert_eq(sl_type_row_bytes(q->type, q->ne[0], &rb, &err), SL_OK);
            double ss = 0;
            for (uint64_t r = 0; r < q->ne[1]; r++) {
                cr_assert_eq(sl_dequantize_row(q->type, q->data + r * rb, row, q->ne[0], &err), SL_OK);
                for (uint64_t j = 0; j < q->ne[0]; j++)
                    ss += (double)row[j] * row[j];
            }
            double sd = sqrt(ss / (double)q->n_elems);
            cr_assert(sd > 0.017 && sd < 0.023, "%s: std %g", sl_type_get(types[i])->name, sd);
            free(row);
            sl_gguf_close(g);
        }
        cr_assert_str_eq(sums[0], sums[1], "same seed, same bytes");
        cr_assert_str_neq(sums[0], sums[2], "another seed, other bytes");
    }
    test_rmtree(dir);
}
