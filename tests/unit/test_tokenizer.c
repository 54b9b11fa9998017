/* test_tokenizer.c - both tokenizers against llama.cpp's vocabulary test
 * vectors and run.c's encodings, plus awkward text, and decode(encode(x))
 * giving x back. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "sl_gguf.h"
#include "sl_tokenizer.h"
#include "sl_types.h"
#include "test_images.h"

typedef struct vocab {
    sl_gguf *g;
    sl_tokenizer *t;
} vocab;

static vocab open_vocab(const char *path)
{
    vocab v;
    sl_err err = {0};
    cr_assert_eq(sl_gguf_open(path, 0, &v.g, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(sl_tokenizer_from_gguf(v.g, &v.t, &err), SL_OK, "%s", err.msg);
    return v;
}

static void close_vocab(vocab *v)
{
    sl_tokenizer_free(v->t);
    sl_gguf_close(v->g);
}

/* The bytes the ids decode to, as a malloc'd string (length in *n). */
static char *decode(const sl_tokenizer *t, const int32_t *ids, size_t n_ids, size_t *n)
{
    size_t cap = 64, len = 0;
    char *s = malloc(cap);
    for (size_t i = 0; i < n_ids; i++) {
        char tmp[512];
        size_t k = sl_tok_piece(t, i ? ids[i - 1] : -1, ids[i], tmp, sizeof tmp);
        cr_assert_leq(k, sizeof tmp);
        if (len + k + 1 > cap)
            s = realloc(s, cap = 2 * (len + k + 1));
        memcpy(s + len, tmp, k);
        len += k;
    }
    s[len] = 0;
    *n = len;
    return s;
}

/* Encodes text and checks the round trip: SPM gives back the dummy-prefix
 * space plus the text (text without U+2581), GPT-2 the text itself. */
static int32_t *encode_rt(const sl_tokenizer *t, const char *text, size_t len, bool bos, size_t *n)
{
    int32_t *ids;
    sl_err err = {0};
    cr_assert_eq(sl_tok_encode(t, text, len, bos, &ids, n, &err), SL_OK, "%s", err.msg);
    for (size_t i = 0; i < *n; i++)
        cr_assert(ids[i] >= 0 && ids[i] < sl_tok_vocab_size(t), "id %d out of range", ids[i]);
    if (!memmem(text, len, "\xe2\x96\x81", 3)) {
        size_t dl;
        char *d = decode(t, bos ? ids + 1 : ids, bos ? *n - 1 : *n, &dl);
        const int spm = sl_tok_kind_of(t) == SL_TOK_SPM && len > 0;
        cr_assert_eq(dl, len + spm, "round trip of \"%.40s\": %zu bytes back for %zu", text, dl, len);
        cr_assert(!spm || d[0] == ' ');
        cr_assert(memcmp(d + spm, text, len) == 0, "round trip of \"%.40s\" gives \"%.40s\"", text, d);
        free(d);
    }
    return ids;
}

/* llama.cpp's test-tokenizer-0 files: cases separated by
 * "\n__ggml_vocab_test__\n", one line of ids per case. */
static void vocab_vectors(const char *models, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "vocab/%s", name);
    vocab v = open_vocab(test_path(models, p));
    snprintf(p, sizeof p, "vocab/%s.inp", name);
    char *inp = (char *)test_slurp(test_path(models, p), NULL);
    snprintf(p, sizeof p, "vocab/%s.out", name);
    char *out = (char *)test_slurp(test_path(models, p), NULL);
    const char *sep = "\n__ggml_vocab_test__\n";
    char *c = inp, *o = out;
    int cases = 0;
    for (;;) {
        char *e = strstr(c, sep);
        if (!e)
            break;
        *e = 0;
        char *nl = strchr(o, '\n');
        cr_assert_not_null(nl, "%s: fewer .out lines than cases", name);
        *nl = 0;
        int32_t want[512];
        int nw = 0;
        for (char *q = o;;) {
            char *end;
            long id = strtol(q, &end, 10);
            if (end == q)
                break;
            want[nw++] = (int32_t)id;
            q = end;
        }
        size_t n;
        int32_t *ids = encode_rt(v.t, c, strlen(c), false, &n);
        cr_assert_eq((int)n, nw, "%s case %d \"%s\": %zu ids, expected %d", name, cases, c, n, nw);
        for (int i = 0; i < nw; i++)
            cr_assert_eq(ids[i], want[i], "%s case %d \"%s\": id %d is %d, expected %d", name, cases, c, i, ids[i],
                         want[i]);
        free(ids);
        cases++;
        c = e + strlen(sep);
        o = nl + 1;
    }
    cr_assert_eq(cases, 46, "%s: %d cases", name, cases);
    free(inp);
    free(out);
    close_vocab(&v);
}

Test(tokenizer, llama_spm_vectors)
{
    NEED_SHARED(models);
    vocab_vectors(models, "ggml-vocab-llama-spm.gguf");
}

Test(tokenizer, gpt2_vectors)
{
    NEED_SHARED(models);
    vocab_vectors(models, "ggml-vocab-gpt-2.gguf");
}

/* run.c's encode(text, bos=1, eos=0) outputs. */
static void jsonl(const sl_tokenizer *t, const char *path)
{
    char *text = (char *)test_slurp(path, NULL);
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_object *o = json_tokener_parse(line), *jt, *ji;
        cr_assert(o && json_object_object_get_ex(o, "text", &jt) && json_object_object_get_ex(o, "ids", &ji));
        const char *s = json_object_get_string(jt);
        size_t len = (size_t)json_object_get_string_len(jt), n;
        int32_t *ids = encode_rt(t, s, len, true, &n);
        cr_assert_eq(n, json_object_array_length(ji), "\"%s\": %zu ids, run.c %zu", s, n, json_object_array_length(ji));
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(ids[i], json_object_get_int(json_object_array_get_idx(ji, i)), "\"%s\": id %zu", s, i);
        free(ids);
        json_object_put(o);
        lines++;
    }
    cr_assert_gt(lines, 5);
    free(text);
}

Test(tokenizer, run_c_encodings_tok512)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir();
    test_write_image(models, "llama2c", SL_TYPE_KEEP, test_path(dir, "s.gguf"));
    vocab v = open_vocab(test_path(dir, "s.gguf"));
    jsonl(v.t, test_path(models, "reference/encode_tok512.jsonl"));
    close_vocab(&v);
    test_rmtree(dir);
}

Test(tokenizer, run_c_encodings_tokenizer32000)
{
    NEED_SHARED(models);
    /* the vocab GGUF carries tokenizer.bin's tokens and scores */
    vocab v = open_vocab(test_path(models, "vocab/ggml-vocab-llama-spm.gguf"));
    jsonl(v.t, test_path(models, "reference/encode_tokenizer32000.jsonl"));
    close_vocab(&v);
}

#define S(x) {x, sizeof(x) - 1}
static const struct {
    const char *s;
    size_t len;
} awkward[] = {
    S(""),
    S(" "),
    S("    "),
    S("\t\t \n\n \r\n"),
    S("a  b   c    d"),
    S("h\xc3\xa9llo w\xc3\xb6rld \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\xa6\x99"),
    S("\xff\xfe bytes \xc3 cut \x80\x80 off"),
    S("nul\0inside"),
    S("<s> and </s> are text"),
    S("\xe2\x80\x83\xe3\x80\x80 unicode spaces"),
};

static void awkward_text(vocab *v)
{
    for (size_t i = 0; i < sizeof awkward / sizeof awkward[0]; i++) {
        size_t n;
        int32_t *ids = encode_rt(v->t, awkward[i].s, awkward[i].len, false, &n);
        if (awkward[i].len == 0)
            cr_assert_eq(n, 0, "empty text gives no tokens");
        free(ids);
        ids = encode_rt(v->t, awkward[i].s, awkward[i].len, true, &n);
        if (sl_tok_add_bos(v->t) || sl_tok_bos(v->t) >= 0)
            cr_assert_eq(ids[0], sl_tok_bos(v->t));
        free(ids);
    }
    char buf[8];
    cr_assert_eq(sl_tok_piece(v->t, -1, -1, buf, sizeof buf), 0);
    cr_assert_eq(sl_tok_piece(v->t, -1, sl_tok_vocab_size(v->t), buf, sizeof buf), 0);
}

Test(tokenizer, awkward_text_llama)
{
    NEED_SHARED(models);
    vocab v = open_vocab(test_path(models, "vocab/ggml-vocab-llama-spm.gguf"));
    awkward_text(&v);
    /* bytes outside the vocabulary become <0xXX> tokens (id = byte + 3 here) */
    size_t n;
    int32_t *ids = encode_rt(v.t, "\xff", 1, false, &n);
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[1], 0xff + 3);
    free(ids);
    close_vocab(&v);
}

Test(tokenizer, awkward_text_gpt2)
{
    NEED_SHARED(models);
    vocab v = open_vocab(test_path(models, "vocab/ggml-vocab-gpt-2.gguf"));
    cr_assert_eq(sl_tok_kind_of(v.t), SL_TOK_GPT2);
    cr_assert_not(sl_tok_add_bos(v.t));
    awkward_text(&v);
    close_vocab(&v);
}

Test(tokenizer, long_text_is_fast_and_exact)
{
    NEED_SHARED(models);
    vocab v = open_vocab(test_path(models, "vocab/ggml-vocab-llama-spm.gguf"));
    size_t len;
    char *text = (char *)test_slurp(test_path(models, "text/tinystories_valid_a.txt"), &len);
    size_t n;
    int32_t *ids = encode_rt(v.t, text, len, true, &n); /* 540 KB in one piece: the heap keeps it O(n log n) */
    cr_assert_gt(n, len / 8);
    free(ids);
    free(text);
    close_vocab(&v);
}

/* A vocabulary with no lone U+2581 and few characters (sluice synth's):
 * spaces become <0x20> and unknown characters their bytes, losslessly, and
 * without overflowing the symbol array (a regression: one symbol per
 * escaped byte is the bound). */
Test(tokenizer, sparse_vocabulary_falls_back_to_bytes)
{
    char *dir = test_tmpdir();
    test_write_synth("tiny", 1, SL_TYPE_KEEP, test_path(dir, "t.gguf"));
    vocab v = open_vocab(test_path(dir, "t.gguf"));
    awkward_text(&v);
    const char many[] = "          x          ";
    size_t n;
    int32_t *ids = encode_rt(v.t, many, sizeof many - 1, true, &n);
    cr_assert_geq(n, 20, "spaces the vocabulary lacks are <0x20> byte tokens (%zu ids)", n);
    free(ids);
    close_vocab(&v);
    test_rmtree(dir);
}
