/* tokenizer.c - SentencePiece-style and byte-level BPE (sl_tokenizer.h).
 *
 * Both kinds share one merge engine: symbols in a linked list over the
 * text, candidate pairs in a heap ordered by priority (SPM: the merged
 * piece's score; BPE: minus the merge rank), leftmost first on ties.  That
 * is run.c's "best pair, first on ties, repeat" in O(n log n). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "sl_tokenizer.h"

/* ---- open-addressing maps ------------------------------------------- */

typedef struct strmap {
    uint32_t cap; /* power of two */
    int32_t *slot; /* token id or -1 */
    const sl_str *keys;
} strmap;

static uint32_t str_hash(const char *p, size_t n) { return (uint32_t)XXH3_64bits(p, n); }

static int strmap_init(strmap *m, const sl_str *keys, uint32_t n)
{
    m->cap = 16;
    while (m->cap < 2 * n)
        m->cap <<= 1;
    m->keys = keys;
    m->slot = malloc(sizeof *m->slot * m->cap);
    if (!m->slot)
        return -1;
    memset(m->slot, 0xff, sizeof *m->slot * m->cap);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t h = str_hash(keys[i].ptr, keys[i].len) & (m->cap - 1);
        for (;; h = (h + 1) & (m->cap - 1)) {
            int32_t s = m->slot[h];
            if (s < 0) {
                m->slot[h] = (int32_t)i;
                break;
            }
            /* duplicate piece: the first id wins, as in llama.cpp */
            if (keys[s].len == keys[i].len && memcmp(keys[s].ptr, keys[i].ptr, keys[i].len) == 0)
                break;
        }
    }
    return 0;
}

static int32_t strmap_get(const strmap *m, const char *p, size_t n)
{
    for (uint32_t h = str_hash(p, n) & (m->cap - 1);; h = (h + 1) & (m->cap - 1)) {
        int32_t s = m->slot[h];
        if (s < 0)
            return -1;
        if (m->keys[s].len == n && memcmp(m->keys[s].ptr, p, n) == 0)
            return s;
    }
}

typedef struct pair_entry {
    uint64_t key; /* left id << 32 | right id; UINT64_MAX = empty */
    int32_t rank, merged;
} pair_entry;

typedef struct pairmap {
    uint32_t cap;
    pair_entry *e;
} pairmap;

static uint32_t u64_hash(uint64_t k) { return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 32); }

static int pairmap_put(pairmap *m, uint64_t key, int32_t rank, int32_t merged)
{
    for (uint32_t h = u64_hash(key) & (m->cap - 1);; h = (h + 1) & (m->cap - 1)) {
        if (m->e[h].key == UINT64_MAX) {
            m->e[h] = (pair_entry){key, rank, merged};
            return 0;
        }
        if (m->e[h].key == key) /* repeated merge: keep the higher priority */
            return 0;
    }
}

static const pair_entry *pairmap_get(const pairmap *m, uint64_t key)
{
    for (uint32_t h = u64_hash(key) & (m->cap - 1);; h = (h + 1) & (m->cap - 1)) {
        if (m->e[h].key == UINT64_MAX)
            return NULL;
        if (m->e[h].key == key)
            return &m->e[h];
    }
}

/* ---- the tokenizer --------------------------------------------------- */

struct sl_tokenizer {
    sl_tok_kind kind;
    int n_vocab, bos, eos, unk;
    bool add_bos;
    sl_str *tokens;
    float *scores;
    int32_t *types;
    strmap vocab;
    int32_t byte_tok[256]; /* SPM: id of <0xXX>; GPT-2: id of the byte's character */
    pairmap merges;        /* GPT-2 only */
    pcre2_code *re;        /* GPT-2 only */
    uint16_t byte_cp[256]; /* GPT-2: byte -> printable code point */
    uint8_t cp_byte[324];  /* and back (code points < 324) */
};

sl_tok_kind sl_tok_kind_of(const sl_tokenizer *t) { return t->kind; }
int sl_tok_vocab_size(const sl_tokenizer *t) { return t->n_vocab; }
int sl_tok_bos(const sl_tokenizer *t) { return t->bos; }
int sl_tok_eos(const sl_tokenizer *t) { return t->eos; }
bool sl_tok_add_bos(const sl_tokenizer *t) { return t->add_bos; }

void sl_tokenizer_free(sl_tokenizer *t)
{
    if (!t)
        return;
    free(t->tokens);
    free(t->scores);
    free(t->types);
    free(t->vocab.slot);
    free(t->merges.e);
    if (t->re)
        pcre2_code_free(t->re);
    free(t);
}

static size_t utf8_put(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    o[0] = (char)(0xe0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the
 * rest to U+0100 upwards in byte order. */
static void gpt2_byte_table(sl_tokenizer *t)
{
    int n = 0;
    memset(t->cp_byte, 0, sizeof t->cp_byte);
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
        t->byte_cp[b] = (uint16_t)(keep ? b : 256 + n++);
        t->cp_byte[t->byte_cp[b]] = (uint8_t)b;
    }
}

static sl_status load_gpt2(sl_tokenizer *t, const sl_gguf *g, sl_err *err)
{
    gpt2_byte_table(t);
    for (int b = 0; b < 256; b++) {
        char s[4];
        size_t n = utf8_put(t->byte_cp[b], s);
        t->byte_tok[b] = strmap_get(&t->vocab, s, n);
        if (t->byte_tok[b] < 0)
            return sl_err_set(err, SL_EFORMAT, "gpt2 vocabulary lacks the token for byte 0x%02x", b);
    }
    const sl_gguf_kv *kv = sl_gguf_find(g, "tokenizer.ggml.merges");
    if (!kv || kv->type != SL_GGUF_ARRAY || kv->arr_type != SL_GGUF_STRING)
        return sl_err_set(err, SL_EFORMAT, "gpt2 vocabulary without tokenizer.ggml.merges (string array)");
    if (kv->arr_n > (1u << 24))
        return sl_err_set(err, SL_ERANGE, "%llu merges is more than sluice accepts (16M)",
                          (unsigned long long)kv->arr_n);
    sl_str *m = malloc(sizeof *m * (kv->arr_n ? kv->arr_n : 1));
    if (!m)
        return sl_err_set(err, SL_ENOMEM, "out of memory for %llu merges", (unsigned long long)kv->arr_n);
    sl_status st = sl_gguf_arr_strings(kv, m, err);
    t->merges.cap = 16;
    while (t->merges.cap < 2 * kv->arr_n)
        t->merges.cap <<= 1;
    t->merges.e = st ? NULL : malloc(sizeof *t->merges.e * t->merges.cap);
    if (!st && !t->merges.e)
        st = sl_err_set(err, SL_ENOMEM, "out of memory for the merge table");
    if (!st)
        memset(t->merges.e, 0xff, sizeof *t->merges.e * t->merges.cap);
    char buf[1024];
    for (uint64_t i = 0; !st && i < kv->arr_n; i++) {
        const char *sp = m[i].len ? memchr(m[i].ptr + 1, ' ', m[i].len - 1) : NULL;
        if (!sp || m[i].len > sizeof buf) {
            st = sl_err_set(err, SL_EFORMAT, "merge %llu is not \"LEFT RIGHT\"", (unsigned long long)i);
            break;
        }
        size_t ll = (size_t)(sp - m[i].ptr), rl = m[i].len - ll - 1;
        int32_t a = strmap_get(&t->vocab, m[i].ptr, ll), b = strmap_get(&t->vocab, sp + 1, rl);
        memcpy(buf, m[i].ptr, ll);
        memcpy(buf + ll, sp + 1, rl);
        int32_t ab = strmap_get(&t->vocab, buf, ll + rl);
        if (a < 0 || b < 0 || ab < 0) /* a merge whose parts or result are not tokens can never apply */
            continue;
        pairmap_put(&t->merges, (uint64_t)a << 32 | (uint32_t)b, (int32_t)i, ab);
    }
    free(m);
    if (st)
        return st;
    /* GPT-2's pre-tokenizer, with Unicode letter / number classes. */
    static const char pat[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    int ec;
    PCRE2_SIZE eo;
    t->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec,
                          &eo, NULL);
    if (!t->re)
        return sl_err_set(err, SL_EUNSUPPORTED, "PCRE2 refused the GPT-2 pattern (error %d)", ec);
    return SL_OK;
}

sl_status sl_tokenizer_from_gguf(const sl_gguf *g, sl_tokenizer **out, sl_err *err)
{
    *out = NULL;
    sl_str model;
    sl_status st = sl_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (st)
        return sl_err_prefix(err, st, "no tokenizer in the image");
    sl_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    if (model.len == 5 && memcmp(model.ptr, "llama", 5) == 0)
        t->kind = SL_TOK_SPM;
    else if (model.len == 4 && memcmp(model.ptr, "gpt2", 4) == 0)
        t->kind = SL_TOK_GPT2;
    else {
        st = sl_err_set(err, SL_EUNSUPPORTED, "tokenizer.ggml.model \"%.*s\" is not supported (llama, gpt2 are)",
                        (int)(model.len > 64 ? 64 : model.len), model.ptr);
        goto fail;
    }
    const sl_gguf_kv *kv = sl_gguf_find(g, "tokenizer.ggml.tokens");
    if (!kv || kv->type != SL_GGUF_ARRAY || kv->arr_type != SL_GGUF_STRING || kv->arr_n == 0 ||
        kv->arr_n > INT32_MAX / 2) {
        st = sl_err_set(err, SL_EFORMAT, "tokenizer.ggml.tokens is missing, empty or not a string array");
        goto fail;
    }
    t->n_vocab = (int)kv->arr_n;
    t->tokens = malloc(sizeof *t->tokens * kv->arr_n);
    t->scores = calloc(kv->arr_n, sizeof *t->scores);
    t->types = malloc(sizeof *t->types * kv->arr_n);
    if (!t->tokens || !t->scores || !t->types) {
        st = sl_err_set(err, SL_ENOMEM, "out of memory for %d tokens", t->n_vocab);
        goto fail;
    }
    if ((st = sl_gguf_arr_strings(kv, t->tokens, err)))
        goto fail;
    for (int i = 0; i < t->n_vocab; i++)
        t->types[i] = SL_TOK_NORMAL;
    const sl_gguf_kv *sk = sl_gguf_find(g, "tokenizer.ggml.scores");
    if (sk && (sk->type != SL_GGUF_ARRAY || sk->arr_n != kv->arr_n || (st = sl_gguf_arr_f32(sk, t->scores, err)))) {
        st = sl_err_set(err, SL_EFORMAT, "tokenizer.ggml.scores does not hold one number per token");
        goto fail;
    }
    if (t->kind == SL_TOK_SPM && !sk) {
        st = sl_err_set(err, SL_EFORMAT, "a llama vocabulary needs tokenizer.ggml.scores");
        goto fail;
    }
    const sl_gguf_kv *tk = sl_gguf_find(g, "tokenizer.ggml.token_type");
    if (tk) {
        int64_t *tmp = malloc(sizeof *tmp * kv->arr_n);
        if (!tmp || tk->type != SL_GGUF_ARRAY || tk->arr_n != kv->arr_n || sl_gguf_arr_i64(tk, tmp, NULL)) {
            free(tmp);
            st = sl_err_set(err, SL_EFORMAT, "tokenizer.ggml.token_type does not hold one integer per token");
            goto fail;
        }
        for (int i = 0; i < t->n_vocab; i++)
            t->types[i] = (int32_t)tmp[i];
        free(tmp);
    }
    uint32_t u;
    t->bos = sl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u, NULL) == SL_OK && u < (uint32_t)t->n_vocab ? (int)u : -1;
    t->eos = sl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u, NULL) == SL_OK && u < (uint32_t)t->n_vocab ? (int)u : -1;
    t->unk = sl_gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &u, NULL) == SL_OK && u < (uint32_t)t->n_vocab ? (int)u : -1;
    bool b;
    t->add_bos = sl_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, NULL) == SL_OK ? b : t->kind == SL_TOK_SPM;
    if (t->add_bos && t->bos < 0)
        t->add_bos = false;
    if (strmap_init(&t->vocab, t->tokens, (uint32_t)t->n_vocab)) {
        st = sl_err_set(err, SL_ENOMEM, "out of memory for the vocabulary index");
        goto fail;
    }
    if (t->kind == SL_TOK_SPM) {
        for (int c = 0; c < 256; c++) {
            char s[8];
            snprintf(s, sizeof s, "<0x%02X>", c);
            t->byte_tok[c] = strmap_get(&t->vocab, s, 6);
        }
    } else if ((st = load_gpt2(t, g, err)))
        goto fail;
    *out = t;
    return SL_OK;
fail:
    sl_tokenizer_free(t);
    return st;
}

/* ---- merge engine --------------------------------------------------- */

typedef struct sym {
    int start, len; /* span of the working text */
    int prev, next;
    int32_t id;     /* token id, or -1 (not in the vocabulary) */
} sym;

typedef struct cand {
    float prio;
    int left, right, llen, rlen;
    int32_t merged;
} cand;

typedef struct heap {
    cand *a;
    size_t n, cap;
} heap;

static bool before(const cand *x, const cand *y) { return x->prio > y->prio || (x->prio == y->prio && x->left < y->left); }

static int heap_push(heap *h, cand c)
{
    if (h->n == h->cap) {
        size_t nc = h->cap ? 2 * h->cap : 64;
        cand *na = realloc(h->a, nc * sizeof *na);
        if (!na)
            return -1;
        h->a = na;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0 && before(&c, &h->a[(i - 1) / 2])) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = c;
    return 0;
}

static cand heap_pop(heap *h)
{
    cand top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(&h->a[c + 1], &h->a[c]))
            c++;
        if (!before(&h->a[c], &last))
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n)
        h->a[i] = last;
    return top;
}

typedef struct work {
    const sl_tokenizer *t;
    const char *text; /* working text (SPM: escaped; GPT-2: byte-mapped chunk) */
    sym *s;
    heap h;
} work;

/* Pushes the pair (l, r) if it can merge. */
static int try_pair(work *w, int l, int r)
{
    if (l < 0 || r < 0)
        return 0;
    const sl_tokenizer *t = w->t;
    cand c = {0, l, r, w->s[l].len, w->s[r].len, -1};
    if (t->kind == SL_TOK_SPM) {
        c.merged = strmap_get(&t->vocab, w->text + w->s[l].start, (size_t)(c.llen + c.rlen));
        if (c.merged < 0)
            return 0;
        c.prio = t->scores[c.merged];
    } else {
        if (w->s[l].id < 0 || w->s[r].id < 0)
            return 0;
        const pair_entry *e = pairmap_get(&t->merges, (uint64_t)w->s[l].id << 32 | (uint32_t)w->s[r].id);
        if (!e)
            return 0;
        c.merged = e->merged;
        c.prio = -(float)e->rank;
    }
    return heap_push(&w->h, c);
}

/* Merges symbols first..(list end) in place. */
static int run_merges(work *w, int first)
{
    w->h.n = 0;
    for (int i = first; i >= 0 && w->s[i].next >= 0; i = w->s[i].next)
        if (try_pair(w, i, w->s[i].next))
            return -1;
    while (w->h.n) {
        cand c = heap_pop(&w->h);
        sym *L = &w->s[c.left], *R = &w->s[c.right];
        if (L->len != c.llen || R->len != c.rlen || L->next != c.right)
            continue; /* stale: one side has merged since */
        L->len += R->len;
        L->id = c.merged;
        L->next = R->next;
        if (R->next >= 0)
            w->s[R->next].prev = c.left;
        R->len = 0;
        if (try_pair(w, L->prev, c.left) || try_pair(w, c.left, L->next))
            return -1;
    }
    return 0;
}

typedef struct idvec {
    int32_t *a;
    size_t n, cap;
} idvec;

static int push_id(idvec *v, int32_t id)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? 2 * v->cap : 64;
        int32_t *na = realloc(v->a, nc * sizeof *na);
        if (!na)
            return -1;
        v->a = na;
        v->cap = nc;
    }
    v->a[v->n++] = id;
    return 0;
}

/* Length of the UTF-8 character at p (1 for a stray byte), as run.c groups
 * bytes: a lead byte and up to 3 continuation bytes. */
static int char_len(const unsigned char *p, size_t left)
{
    if (left >= 3 && p[0] == 0xe2 && p[1] == 0x96 && p[2] == 0x81)
        return 3; /* an escaped space stays whole, as run.c's ' ' never joins what follows */
    int n = 1;
    while ((size_t)n < left && n < 4 && (p[n] & 0xc0) == 0x80)
        n++;
    return n;
}

static int encode_spm(const sl_tokenizer *t, const char *text, size_t len, idvec *out, work *w)
{
    if (len == 0)
        return 0;
    /* dummy prefix + spaces as U+2581 */
    size_t n_sp = 1;
    for (size_t i = 0; i < len; i++)
        n_sp += text[i] == ' ';
    if (len > (SIZE_MAX - 3) / 2 || len + 2 * n_sp > (size_t)INT32_MAX / 2)
        return -2;
    char *e = malloc(len + 2 * n_sp + 1);
    char *sp = calloc(len + 2 * n_sp + 1, 1); /* 1 where an escaped space starts */
    sym *s = malloc(sizeof *s * (len + 2 * n_sp + 1)); /* at most one symbol per escaped byte */
    if (!e || !sp || !s) {
        free(e);
        free(sp);
        free(s);
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == 0 || text[i - 1] == ' ') { /* the dummy prefix, then each space */
            sp[m] = 1;
            memcpy(e + m, "\xe2\x96\x81", 3);
            m += 3;
        }
        if (i < len && text[i] != ' ')
            e[m++] = text[i];
    }
    int ns = 0;
    for (size_t i = 0; i < m;) {
        int cl = char_len((const unsigned char *)e + i, m - i);
        /* a character outside the vocabulary may still merge into a piece;
         * whatever is left unknown is spelled in byte tokens at the end */
        s[ns] = (sym){(int)i, cl, ns - 1, ns + 1, strmap_get(&t->vocab, e + i, (size_t)cl)};
        ns++;
        i += (size_t)cl;
    }
    s[ns - 1].next = -1;
    w->text = e;
    w->s = s;
    int rc = run_merges(w, 0);
    for (int i = 0; rc == 0 && i >= 0; i = s[i].next) {
        if (s[i].id >= 0) {
            rc = push_id(out, s[i].id);
            continue;
        }
        for (int b = 0; rc == 0 && b < s[i].len; b++) {
            const int at = s[i].start + b;
            int32_t bt = t->byte_tok[(unsigned char)e[at]];
            if (sp[at] && t->byte_tok[' '] >= 0) { /* a space the vocabulary cannot spell as U+2581 */
                bt = t->byte_tok[' '];
                b += 2;
            }
            rc = bt >= 0 ? push_id(out, bt) : t->unk >= 0 ? push_id(out, t->unk) : -3;
        }
    }
    free(e);
    free(sp);
    free(s);
    return rc;
}

/* One pre-tokenized chunk of GPT-2 input: bytes -> printable characters ->
 * merges by rank. */
static int encode_gpt2_chunk(const sl_tokenizer *t, const unsigned char *p, size_t len, idvec *out, work *w, char **buf,
                             sym **sbuf, size_t *cap)
{
    if (len == 0)
        return 0;
    if (len > *cap) {
        size_t nc = len > 2 * *cap ? len : 2 * *cap;
        char *nb = realloc(*buf, 2 * nc);
        if (!nb)
            return -1;
        *buf = nb;
        sym *ns = realloc(*sbuf, sizeof *ns * nc);
        if (!ns)
            return -1;
        *sbuf = ns;
        *cap = nc;
    }
    char *e = *buf;
    sym *s = *sbuf;
    size_t m = 0;
    for (size_t i = 0; i < len; i++) {
        size_t cl = utf8_put(t->byte_cp[p[i]], e + m);
        s[i] = (sym){(int)m, (int)cl, (int)i - 1, (int)i + 1, t->byte_tok[p[i]]};
        m += cl;
    }
    s[len - 1].next = -1;
    w->text = e;
    w->s = s;
    if (run_merges(w, 0))
        return -1;
    for (int i = 0; i >= 0; i = s[i].next)
        if (push_id(out, s[i].id))
            return -1;
    return 0;
}

static int encode_gpt2(const sl_tokenizer *t, const char *text, size_t len, idvec *out, work *w)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!md)
        return -1;
    char *buf = NULL;
    sym *sb = NULL;
    size_t cap = 0, at = 0;
    int rc = 0;
    while (rc == 0 && at < len) {
        int r = pcre2_match(t->re, (PCRE2_SPTR)text, len, at, 0, md, NULL);
        size_t ms = len, me = len;
        if (r > 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            ms = ov[0];
            me = ov[1];
        } else if (r != PCRE2_ERROR_NOMATCH) {
            rc = -4;
            break;
        }
        /* Bytes no alternative matches (invalid UTF-8) form their own chunk. */
        if (ms > at)
            rc = encode_gpt2_chunk(t, (const unsigned char *)text + at, ms - at, out, w, &buf, &sb, &cap);
        if (me == ms && ms < len) /* the pattern never matches empty; if it did, take one byte */
            me = ms + 1;
        if (rc == 0 && me > ms)
            rc = encode_gpt2_chunk(t, (const unsigned char *)text + ms, me - ms, out, w, &buf, &sb, &cap);
        at = me;
    }
    pcre2_match_data_free(md);
    free(buf);
    free(sb);
    return rc;
}

sl_status sl_tok_encode(const sl_tokenizer *t, const char *text, size_t len, bool add_bos, int32_t **ids, size_t *n,
                        sl_err *err)
{
    *ids = NULL;
    *n = 0;
    idvec v = {0};
    work w = {.t = t};
    int rc = 0;
    if (add_bos && t->bos >= 0)
        rc = push_id(&v, t->bos);
    if (rc == 0)
        rc = t->kind == SL_TOK_SPM ? encode_spm(t, text, len, &v, &w) : encode_gpt2(t, text, len, &v, &w);
    free(w.h.a);
    if (rc) {
        free(v.a);
        switch (rc) {
        case -2: return sl_err_set(err, SL_ERANGE, "text of %zu bytes is too long to encode", len);
        case -3: return sl_err_set(err, SL_EUNSUPPORTED, "text holds a character the vocabulary cannot express (no byte tokens, no unknown token)");
        case -4: return sl_err_set(err, SL_EINVAL, "the pre-tokenizer failed on this text");
        default: return sl_err_set(err, SL_ENOMEM, "out of memory encoding %zu bytes", len);
        }
    }
    if (!v.a && !(v.a = malloc(sizeof *v.a)))
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    *ids = v.a;
    *n = v.n;
    return SL_OK;
}

static size_t emit(char *buf, size_t cap, size_t at, const void *p, size_t n)
{
    if (at < cap)
        memcpy(buf + at, p, at + n <= cap ? n : cap - at);
    return at + n;
}

/* Decodes one UTF-8 code point; 0 bytes if malformed. */
static int utf8_get(const unsigned char *p, size_t left, uint32_t *cp)
{
    if (left >= 1 && p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (left >= 2 && (p[0] & 0xe0) == 0xc0 && (p[1] & 0xc0) == 0x80) {
        *cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
        return 2;
    }
    if (left >= 3 && (p[0] & 0xf0) == 0xe0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80) {
        *cp = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
        return 3;
    }
    return 0;
}

bool sl_is_byte_piece(const char *s, uint64_t len)
{
    return len == 6 && memcmp(s, "<0x", 3) == 0 && isxdigit((unsigned char)s[3]) && isxdigit((unsigned char)s[4]) &&
           s[5] == '>';
}

size_t sl_tok_piece(const sl_tokenizer *t, int32_t prev, int32_t tok, char *buf, size_t cap)
{
    if (tok < 0 || tok >= t->n_vocab)
        return 0;
    const sl_str s = t->tokens[tok];
    const unsigned char *p = (const unsigned char *)s.ptr;
    if (t->types[tok] == SL_TOK_CONTROL || t->types[tok] == SL_TOK_UNUSED)
        return 0;
    size_t at = 0;
    if (t->kind == SL_TOK_GPT2) {
        for (size_t i = 0; i < s.len;) {
            uint32_t cp;
            int n = utf8_get(p + i, s.len - i, &cp);
            if (n == 0 || cp >= sizeof t->cp_byte || (t->cp_byte[cp] == 0 && cp != t->byte_cp[0])) {
                at = emit(buf, cap, at, p + i, 1); /* not byte-level text: pass the byte through */
                i++;
                continue;
            }
            at = emit(buf, cap, at, &t->cp_byte[cp], 1);
            i += (size_t)n;
        }
        return at;
    }
    if (sl_is_byte_piece(s.ptr, s.len)) {
        const unsigned char b = (unsigned char)strtoul((const char[3]){s.ptr[3], s.ptr[4], 0}, NULL, 16);
        if (b == ' ' && prev >= 0 && prev == t->bos) /* the dummy prefix, spelled as a byte */
            return 0;
        return emit(buf, cap, 0, &b, 1);
    }
    size_t i = 0;
    if (prev >= 0 && prev == t->bos) { /* run.c drops the dummy-prefix space after BOS */
        if (s.len >= 3 && memcmp(p, "\xe2\x96\x81", 3) == 0)
            i = 3;
        else if (s.len >= 1 && p[0] == ' ')
            i = 1;
    }
    while (i < s.len) {
        if (s.len - i >= 3 && memcmp(p + i, "\xe2\x96\x81", 3) == 0) {
            at = emit(buf, cap, at, " ", 1);
            i += 3;
        } else
            at = emit(buf, cap, at, p + i++, 1);
    }
    return at;
}
