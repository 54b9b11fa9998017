/* test_support.h - helpers shared by the Criterion tests. */
#ifndef SL_TEST_SUPPORT_H
#define SL_TEST_SUPPORT_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ../shared/models beside the checkout (or $SLUICE_SHARED/models).  Where it
 * is missing the test skips, unless SLUICE_REQUIRE_SHARED=1 (CI), where the
 * skip would hide a missing check and so fails instead. */
static inline const char *test_models_dir(void)
{
    static char dir[4096];
    const char *env = getenv("SLUICE_SHARED");
    snprintf(dir, sizeof dir, "%s/models", env ? env : SL_SOURCE_DIR "/../shared");
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/stories260K.bin", dir);
    return access(probe, R_OK) == 0 ? dir : NULL;
}

#define NEED_SHARED(var)                                                                                               \
    const char *var = test_models_dir();                                                                               \
    do {                                                                                                               \
        if (!var) {                                                                                                    \
            const char *req_ = getenv("SLUICE_REQUIRE_SHARED");                                                        \
            if (req_ && strcmp(req_, "1") == 0)                                                                        \
                cr_assert_fail("../shared/models is missing and SLUICE_REQUIRE_SHARED=1");                                   \
            cr_skip_test("../shared/models not found beside the checkout: skipped");                                  \
        }                                                                                                              \
    } while (0)

static inline char *test_path(const char *dir, const char *name)
{
    static char p[8][4200];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%.3900s/%.250s", dir, name);
    return p[k];
}

/* A fresh temporary directory for one test. */
static inline char *test_tmpdir(void)
{
    static char d[64];
    snprintf(d, sizeof d, "/tmp/sluice-test-XXXXXX");
    cr_assert_not_null(mkdtemp(d), "mkdtemp failed");
    return d;
}

static inline int rm_one_(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static inline void test_rmtree(const char *dir)
{
    nftw(dir, rm_one_, 16, FTW_DEPTH | FTW_PHYS);
}

/* Reads a whole file (test data, images) into memory, NUL-terminated;
 * len may be NULL. */
static inline unsigned char *test_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = 0;
    if (len)
        *len = (size_t)n;
    return b;
}

/* Whitespace-separated integers from p up to the first non-number, at most cap. */
static inline int test_parse_ints(const char *p, int32_t *out, int cap)
{
    int n = 0;
    for (char *end; n < cap; p = end) {
        const long v = strtol(p, &end, 10);
        if (end == p)
            break;
        out[n++] = (int32_t)v;
    }
    return n;
}

/* A run.c reference (../shared/models/reference, the .ids files): the integers of its
 * "prompt:" line (at most prompt_cap) and of its "sequence:" line (at most
 * seq_cap; the sequence begins with the prompt). */
static inline void test_read_ref_ids(const char *path, int32_t *prompt, int prompt_cap, int *n_prompt, int32_t *seq,
                                     int seq_cap, int *n_seq)
{
    char *text = (char *)test_slurp(path, NULL);
    const char *p = strstr(text, "prompt:"), *q = strstr(text, "sequence:");
    cr_assert(p && q, "%s: no prompt/sequence lines", path);
    *n_prompt = test_parse_ints(p + 7, prompt, prompt_cap);
    *n_seq = test_parse_ints(q + 9, seq, seq_cap);
    free(text);
}

static inline void test_spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

#endif
