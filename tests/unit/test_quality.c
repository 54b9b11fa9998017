/* Quality verdicts in images: written atomically without touching the
 * content checksum, read back, and refused when carried to another image. */
#include <criterion/criterion.h>
#include <math.h>

#include "sl_gguf_write.h"
#include "sl_quality_write.h"
#include "sl_types.h"
#include "test_support.h"

/* A small image with one tensor whose values depend on seed. */
static void write_image(const char *path, float seed, char *checksum)
{
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = seed + (float)i;
    sl_gguf_writer *w = sl_gw_new();
    sl_err err;
    uint64_t ne[2] = {32, 2};
    cr_assert_eq(sl_gw_set_str(w, "general.architecture", "llama"), SL_OK);
    cr_assert_eq(sl_gw_add_tensor(w, "t", SL_TYPE_F32, 2, ne, x, &err), SL_OK);
    cr_assert_eq(sl_gw_write(w, path, checksum, &err), SL_OK, "%s", err.msg);
    sl_gw_free(w);
}

static sl_quality verdict_for(const char *checksum)
{
    sl_quality q = {.present = true, .pass = true, .tokens = 19395, .ppl = 4.2243, .base_ppl = 4.2190,
                    .ppl_ratio = 1.00127, .kl_mean = 7.14e-4, .kl_p99 = 4.3e-3, .top1 = 0.985};
    snprintf(q.candidate, sizeof q.candidate, "%s", checksum);
    snprintf(q.base, sizeof q.base, "xxh3-128:%032d", 7);
    snprintf(q.base_name, sizeof q.base_name, "base.gguf");
    snprintf(q.limits, sizeof q.limits, "kl_mean <= 0.1");
    snprintf(q.time, sizeof q.time, "2026-11-26T18:00:00Z");
    return q;
}

static sl_status read_verdict(const char *path, sl_quality *q, sl_err *err)
{
    sl_gguf *g;
    sl_status st = sl_gguf_open(path, SL_GGUF_VERIFY_CHECKSUM, &g, err);
    cr_assert_eq(st, SL_OK, "the image no longer verifies: %s", err->msg);
    char sum[SL_CHECKSUM_STRLEN + 1];
    cr_assert_eq(sl_gguf_compute_checksum(g, sum, err), SL_OK);
    st = sl_quality_read(g, sum, q, err);
    sl_gguf_close(g);
    return st;
}

Test(quality, verdict_round_trips_and_leaves_the_content_checksum_alone)
{
    char *dir = test_tmpdir();
    char a_sum[SL_CHECKSUM_STRLEN + 1];
    const char *a = test_path(dir, "a.gguf");
    write_image(a, 1.0f, a_sum);
    sl_quality q;
    sl_err err;
    cr_assert_eq(read_verdict(a, &q, &err), SL_OK);
    cr_assert(!q.present, "a fresh image has no verdict");

    sl_quality v = verdict_for(a_sum);
    cr_assert_eq(sl_quality_write(a, &v, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(read_verdict(a, &q, &err), SL_OK, "%s", err.msg);
    cr_assert(q.present && q.pass);
    cr_assert_str_eq(q.candidate, a_sum, "checksum unchanged by the rewrite");
    cr_assert_str_eq(q.base, v.base);
    cr_assert_eq(q.tokens, 19395);
    cr_assert_float_eq(q.kl_mean, 7.14e-4, 1e-9);
    cr_assert_float_eq(q.top1, 0.985, 1e-7);
    cr_assert_str_eq(q.time, v.time);

    /* a second verdict replaces the first (no duplicate keys: the reader
     * would refuse the file) */
    v.pass = false;
    cr_assert_eq(sl_quality_write(a, &v, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(read_verdict(a, &q, &err), SL_OK, "%s", err.msg);
    cr_assert(q.present && !q.pass);
    test_rmtree(dir);
}

Test(quality, a_verdict_carried_to_another_image_is_refused)
{
    char *dir = test_tmpdir();
    char a_sum[SL_CHECKSUM_STRLEN + 1], b_sum[SL_CHECKSUM_STRLEN + 1];
    const char *a = test_path(dir, "a.gguf"), *b = test_path(dir, "b.gguf"), *forged = test_path(dir, "f.gguf");
    write_image(a, 1.0f, a_sum);
    write_image(b, 2.0f, b_sum);
    cr_assert_str_neq(a_sum, b_sum);
    sl_quality v = verdict_for(a_sum);
    sl_err err;
    /* the writer will not put A's verdict into B */
    cr_assert_eq(sl_quality_write(b, &v, &err), SL_ECHECKSUM);
    cr_assert(strstr(err.msg, "not the"), "%s", err.msg);

    /* forged by hand: B's tensors with every key of A, verdict included */
    cr_assert_eq(sl_quality_write(a, &v, &err), SL_OK, "%s", err.msg);
    sl_gguf *ga, *gb;
    cr_assert_eq(sl_gguf_open(a, 0, &ga, &err), SL_OK);
    cr_assert_eq(sl_gguf_open(b, 0, &gb, &err), SL_OK);
    sl_gguf_writer *w = sl_gw_new();
    for (uint64_t i = 0; i < ga->n_kv; i++)
        if (strcmp(ga->kv[i].key, "sluice.content_checksum") && strcmp(ga->kv[i].key, "general.alignment"))
            cr_assert_eq(sl_gw_copy_kv(w, &ga->kv[i]), SL_OK);
    const sl_gguf_tensor *t = &gb->tensors[0];
    cr_assert_eq(sl_gw_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err), SL_OK);
    cr_assert_eq(sl_gw_write(w, forged, NULL, &err), SL_OK, "%s", err.msg);
    sl_gw_free(w);
    sl_gguf_close(ga);
    sl_gguf_close(gb);
    sl_quality q;
    cr_assert_eq(read_verdict(forged, &q, &err), SL_ECHECKSUM, "a copied verdict must not be believed");
    cr_assert(strstr(err.msg, "does not apply"), "%s", err.msg);
    test_rmtree(dir);
}

Test(quality, malformed_verdicts_are_typed_errors)
{
    char *dir = test_tmpdir();
    char sum[SL_CHECKSUM_STRLEN + 1];
    const char *p = test_path(dir, "m.gguf");
    float x[32] = {0};
    uint64_t ne[1] = {32};
    sl_err err;
    struct {
        const char *verdict;
        int with_numbers;
        sl_status want;
    } cases[] = {{"maybe", 1, SL_EFORMAT}, {"pass", 0, SL_EFORMAT}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sl_gguf_writer *w = sl_gw_new();
        cr_assert_eq(sl_gw_add_tensor(w, "t", SL_TYPE_F32, 1, ne, x, &err), SL_OK);
        cr_assert_eq(sl_gw_write(w, p, sum, &err), SL_OK);
        sl_gw_set_str(w, SL_QUALITY_PREFIX "verdict", cases[c].verdict);
        sl_gw_set_str(w, SL_QUALITY_PREFIX "candidate_checksum", sum);
        sl_gw_set_str(w, SL_QUALITY_PREFIX "base_checksum", sum);
        if (cases[c].with_numbers) {
            const char *keys[] = {"ppl", "base_ppl", "ppl_ratio", "kl_mean", "kl_p99", "top1"};
            for (int i = 0; i < 6; i++) {
                char k[64];
                snprintf(k, sizeof k, SL_QUALITY_PREFIX "%s", keys[i]);
                sl_gw_set_f32(w, k, 1.0f);
            }
            sl_gw_set_u64(w, SL_QUALITY_PREFIX "tokens", 10);
        }
        cr_assert_eq(sl_gw_write(w, p, NULL, &err), SL_OK);
        sl_gw_free(w);
        sl_quality q;
        cr_assert_eq(read_verdict(p, &q, &err), cases[c].want, "case %zu: %s", c, err.msg);
    }
    test_rmtree(dir);
}
