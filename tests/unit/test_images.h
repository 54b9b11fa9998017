/* test_images.h - images for the tests: stories260K, written from
 * ../shared/models with the importers, and synth shapes. */
#ifndef SL_TEST_IMAGES_H
#define SL_TEST_IMAGES_H

#include "sl_model.h"
#include "sl_model_src.h"
#include "sl_synth.h"
#include "test_support.h"

/* kind: "llama2c" (stories260K.bin) or "ak42" (stories260K-q8.bin), stored
 * as `type` (a ggml type id or SL_TYPE_KEEP). */
static inline void test_write_image(const char *models, const char *kind, uint32_t type, const char *out)
{
    sl_model_src m;
    sl_err err = {0};
    const int ak42 = strcmp(kind, "ak42") == 0;
    sl_status st = ak42 ? sl_import_ak42(test_path(models, "stories260K-q8.bin"), test_path(models, "tok512.bin"), &m, &err)
                        : sl_import_llama2c(test_path(models, "stories260K.bin"), test_path(models, "tok512.bin"), &m, &err);
    cr_assert_eq(st, SL_OK, "%s", err.msg);
    sl_write_opts o = {.type = type, .recipe = "test", .report = NULL};
    cr_assert_eq(sl_model_write(&m, out, &o, NULL, &err), SL_OK, "%s", err.msg);
    sl_model_src_free(&m);
}

/* The synth shape with this seed, stored as `type`, written to out. */
static inline void test_write_synth(const char *shape, uint64_t seed, uint32_t type, const char *out)
{
    sl_model_src m;
    sl_err err = {0};
    cr_assert_eq(sl_synth_model(sl_synth_find(shape), seed, &m, &err), SL_OK, "%s", err.msg);
    sl_write_opts o = {.type = type, .recipe = "synth"};
    cr_assert_eq(sl_model_write(&m, out, &o, NULL, &err), SL_OK, "%s", err.msg);
    sl_model_src_free(&m);
}

static inline sl_model *test_open_model(const char *path)
{
    sl_model *m;
    sl_err err = {0};
    cr_assert_eq(sl_model_open(path, SL_GGUF_VERIFY_CHECKSUM, &m, &err), SL_OK, "%s", err.msg);
    return m;
}

#endif
