/* Hostile images: every malformed input is refused with a typed error and
 * a message, never a crash or a read outside the buffer (run under ASan).
 * Images are built byte by byte so each field can be made wrong on its own. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_gguf.h"
#include "sl_le.h"
#include "sl_types.h"
#include "test_support.h"

typedef struct img {
    uint8_t b[1 << 16];
    size_t n;
} img;

static void u32(img *m, uint32_t v) { sl_le_store_u32(m->b + m->n, v); m->n += 4; }
static void u64(img *m, uint64_t v) { sl_le_store_u64(m->b + m->n, v); m->n += 8; }
static void str(img *m, const char *s) { u64(m, strlen(s)); memcpy(m->b + m->n, s, strlen(s)); m->n += strlen(s); }
static void pad(img *m, size_t a) { while (m->n % a) m->b[m->n++] = 0; }
static void zeros(img *m, size_t k) { memset(m->b + m->n, 0, k); m->n += k; }
static void head(img *m, uint64_t nt, uint64_t nkv) { m->n = 0; u32(m, SL_GGUF_MAGIC); u32(m, 3); u64(m, nt); u64(m, nkv); }
static void kv_u32(img *m, const char *k, uint32_t v) { str(m, k); u32(m, SL_GGUF_U32); u32(m, v); }
static void kv_str(img *m, const char *k, const char *v) { str(m, k); u32(m, SL_GGUF_STRING); str(m, v); }
static void tensor(img *m, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off)
{
    str(m, name);
    u32(m, nd);
    for (uint32_t i = 0; i < nd; i++)
        u64(m, ne[i]);
    u32(m, type);
    u64(m, off);
}

/* The valid base: 2 keys, tensor "a" f32[8] at 0, "b" q8_0[32 x 2] at 32;
 * the file ends exactly where b's data ends. */
static void base(img *m)
{
    head(m, 2, 2);
    kv_str(m, "general.architecture", "llama");
    kv_u32(m, "general.alignment", 32);
    tensor(m, "a", 1, (uint64_t[]){8}, SL_TYPE_F32, 0);
    tensor(m, "b", 2, (uint64_t[]){32, 2}, SL_TYPE_Q8_0, 32);
    pad(m, 32);
    zeros(m, 32 + 68);
}

static void expect(const img *m, sl_status code, const char *needle)
{
    sl_gguf *g = NULL;
    sl_err err = {0};
    sl_status st = sl_gguf_parse(m->b, m->n, 0, &g, &err);
    cr_assert_eq(st, code, "expected %s, got %s: %s", sl_status_name(code), sl_status_name(st), err.msg);
    cr_assert_null(g);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
}

Test(hostile, base_image_is_valid)
{
    img m;
    base(&m);
    sl_gguf *g;
    sl_err err;
    cr_assert_eq(sl_gguf_parse(m.b, m.n, 0, &g, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(g->n_tensors, 2);
    cr_assert_eq(g->tensors[1].nbytes, 68);
    sl_gguf_close(g);
}

Test(hostile, truncation_at_every_byte_is_refused)
{
    img m;
    base(&m);
    for (size_t len = 0; len < m.n; len++) {
        /* A copy of exactly len bytes, so ASan sees any read past it. */
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, m.b, len);
        sl_gguf *g = NULL;
        sl_err err = {0};
        sl_status st = sl_gguf_parse(cut, len, 0, &g, &err);
        cr_assert_neq(st, SL_OK, "truncated to %zu of %zu bytes but accepted", len, m.n);
        cr_assert_null(g);
        cr_assert(err.msg[0], "truncation at %zu gave no message", len);
        free(cut);
    }
}

Test(hostile, bad_magic_and_versions)
{
    img m;
    base(&m);
    m.b[0] = 'X';
    expect(&m, SL_EFORMAT, "bad magic");
    base(&m);
    sl_le_store_u32(m.b + 4, 1);
    expect(&m, SL_EUNSUPPORTED, "version 1");
    sl_le_store_u32(m.b + 4, 0x03000000u);
    expect(&m, SL_EUNSUPPORTED, "big-endian");
}

Test(hostile, absurd_counts)
{
    img m;
    base(&m);
    sl_le_store_u64(m.b + 16, 1ull << 63);
    expect(&m, SL_ERANGE, "metadata count");
    base(&m);
    sl_le_store_u64(m.b + 8, 1ull << 40);
    expect(&m, SL_ERANGE, "tensor count");
    base(&m);
    sl_le_store_u64(m.b + 16, 3); /* one more pair than present: runs into the tensor table */
    sl_gguf *g;
    cr_assert_neq(sl_gguf_parse(m.b, m.n, 0, &g, NULL), SL_OK);
}

Test(hostile, counts_that_the_bytes_left_cannot_hold)
{
    img m;
    head(&m, 0, 1);
    u64(&m, 1); /* a pair needs at least 14 bytes; only 8 remain */
    expect(&m, SL_ERANGE, "impossible for a 32-byte file");
    head(&m, 1, 0);
    zeros(&m, 20);
    expect(&m, SL_ERANGE, "tensor count 1 is impossible");
}

Test(hostile, string_and_array_lengths)
{
    img m;
    head(&m, 0, 1);
    u64(&m, UINT64_MAX); /* key length */
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "claims");
    head(&m, 0, 1);
    str(&m, "k");
    u32(&m, SL_GGUF_STRING);
    u64(&m, (1ull << 62));
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "claims");
    head(&m, 0, 1);
    str(&m, "k");
    u32(&m, SL_GGUF_ARRAY);
    u32(&m, SL_GGUF_U32);
    u64(&m, (1ull << 61) + 1); /* x4 bytes wraps to 4 in 64 bits */
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "exceeds");
    head(&m, 0, 1);
    str(&m, "k");
    u32(&m, SL_GGUF_ARRAY);
    u32(&m, SL_GGUF_STRING);
    u64(&m, 1ull << 60);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "cannot fit");
    head(&m, 0, 1);
    str(&m, "k");
    u32(&m, SL_GGUF_ARRAY);
    u32(&m, SL_GGUF_STRING);
    u64(&m, 2);
    str(&m, "ok");
    u64(&m, 1000); /* second string runs off the end */
    expect(&m, SL_EFORMAT, "element 1");
}

Test(hostile, value_types)
{
    img m;
    head(&m, 0, 1);
    str(&m, "k");
    u32(&m, 13);
    u32(&m, 0);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "unknown value type 13");
    head(&m, 0, 1);
    str(&m, "k");
    u32(&m, SL_GGUF_BOOL);
    m.b[m.n++] = 2;
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "neither 0 nor 1");
    head(&m, 0, 1);
    str(&m, "k");
    u32(&m, SL_GGUF_ARRAY);
    u32(&m, SL_GGUF_ARRAY);
    u64(&m, 1);
    zeros(&m, 32);
    expect(&m, SL_EUNSUPPORTED, "nested");
    head(&m, 0, 1);
    str(&m, "k");
    u32(&m, SL_GGUF_ARRAY);
    u32(&m, 77);
    u64(&m, 1);
    zeros(&m, 8);
    expect(&m, SL_EFORMAT, "unknown array element type");
    head(&m, 0, 1);
    u64(&m, 3);
    memcpy(m.b + m.n, "a\0b", 3);
    m.n += 3;
    u32(&m, SL_GGUF_U8);
    m.b[m.n++] = 1;
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "NUL");
}

Test(hostile, duplicate_keys_and_names)
{
    img m;
    head(&m, 0, 2);
    kv_u32(&m, "x", 1);
    kv_u32(&m, "x", 2);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "duplicate metadata key 'x'");
    head(&m, 2, 0);
    tensor(&m, "t", 1, (uint64_t[]){8}, SL_TYPE_F32, 0);
    tensor(&m, "t", 1, (uint64_t[]){8}, SL_TYPE_F32, 32);
    pad(&m, 32);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "duplicate tensor name 't'");
}

Test(hostile, alignment_values)
{
    const uint32_t bad[] = {0, 3, 48};
    for (int i = 0; i < 3; i++) {
        img m;
        head(&m, 0, 1);
        kv_u32(&m, "general.alignment", bad[i]);
        zeros(&m, 64);
        expect(&m, SL_EFORMAT, "power of two");
    }
    img m;
    head(&m, 0, 1);
    str(&m, "general.alignment");
    u32(&m, SL_GGUF_I32);
    u32(&m, 32);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "requires u32");
    /* A huge alignment puts the data section past the end. */
    head(&m, 1, 1);
    kv_u32(&m, "general.alignment", 1u << 31);
    tensor(&m, "t", 1, (uint64_t[]){8}, SL_TYPE_F32, 0);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "past the end");
}

Test(hostile, tensor_records)
{
    img m;
    head(&m, 1, 0);
    tensor(&m, "t", 5, (uint64_t[]){1, 1, 1, 1, 1}, SL_TYPE_F32, 0);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "5 dimensions");
    head(&m, 1, 0);
    tensor(&m, "t", 0, NULL, SL_TYPE_F32, 0);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "0 dimensions");
    head(&m, 1, 0);
    tensor(&m, "t", 2, (uint64_t[]){8, 0}, SL_TYPE_F32, 0);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "dimension 1 is 0");
    head(&m, 1, 0);
    tensor(&m, "t", 1, (uint64_t[]){8}, 99, 0);
    zeros(&m, 64);
    expect(&m, SL_EUNSUPPORTED, "unknown type id 99");
    head(&m, 1, 0);
    tensor(&m, "t", 1, (uint64_t[]){33}, SL_TYPE_Q8_0, 0);
    pad(&m, 32);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "whole number of q8_0 blocks");
    head(&m, 1, 0);
    tensor(&m, "", 1, (uint64_t[]){8}, SL_TYPE_F32, 0);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "empty");
}

/* CVE-2025-53630 / CVE-2026-27940 / CVE-2026-33298: sizes that wrap when
 * multiplied or added must be refused, not wrapped into a small buffer. */
Test(hostile, size_overflows_of_the_llama_cpp_advisories)
{
    img m;
    /* Element count past 2^63. */
    head(&m, 1, 0);
    tensor(&m, "t", 3, (uint64_t[]){32, 1ull << 62, 4}, SL_TYPE_F32, 0);
    pad(&m, 32);
    zeros(&m, 64);
    expect(&m, SL_ERANGE, "element count overflows");
    /* Byte count past 2^63 while the element count fits. */
    head(&m, 1, 0);
    tensor(&m, "t", 2, (uint64_t[]){32, (1ull << 62) / 32}, SL_TYPE_F32, 0);
    pad(&m, 32);
    zeros(&m, 64);
    expect(&m, SL_ERANGE, "byte size overflows");
    /* The #18674 shape: dim 2^42+1 of q8_0 rows: sized without wrap, then
     * refused for running past the file. */
    head(&m, 1, 0);
    tensor(&m, "token_embd.weight", 2, (uint64_t[]){1152, (1ull << 42) + 1}, SL_TYPE_Q8_0, 0);
    pad(&m, 32);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "run past the end");
    /* Offset near 2^64: offset + size would wrap. */
    head(&m, 1, 0);
    tensor(&m, "t", 1, (uint64_t[]){8}, SL_TYPE_F32, UINT64_MAX - 31);
    pad(&m, 32);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "run past the end");
}

Test(hostile, data_ranges)
{
    img m;
    head(&m, 1, 0);
    tensor(&m, "t", 1, (uint64_t[]){8}, SL_TYPE_F32, 64);
    pad(&m, 32);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "run past the end");
    head(&m, 1, 0);
    tensor(&m, "t", 1, (uint64_t[]){8}, SL_TYPE_F32, 16);
    pad(&m, 32);
    zeros(&m, 64);
    expect(&m, SL_EFORMAT, "not a multiple of the alignment");
    head(&m, 2, 0);
    tensor(&m, "a", 1, (uint64_t[]){16}, SL_TYPE_F32, 0);
    tensor(&m, "b", 1, (uint64_t[]){8}, SL_TYPE_F32, 32);
    pad(&m, 32);
    zeros(&m, 96);
    expect(&m, SL_EFORMAT, "overlap");
}

Test(hostile, random_byte_flips_never_crash)
{
    img m, c;
    base(&m);
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) {
        c = m;
        for (int k = 0; k < 3; k++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            c.b[s % c.n] ^= (uint8_t)(s >> 32);
        }
        sl_gguf *g = NULL;
        if (sl_gguf_parse(c.b, c.n, SL_GGUF_VERIFY_CHECKSUM, &g, NULL) == SL_OK)
            sl_gguf_close(g);
    }
}
