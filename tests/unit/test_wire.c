/* The wire codec (docs/protocol.md): hand-written bytes, round trips of
 * every message type, every range and format check, truncation at every
 * length, and random damage to valid messages, which must decode to an
 * error or to a message that encodes back to the same bytes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sl_mac.h"
#include "sl_wire.h"

static uint8_t buf[1 << 17];

/* A GENERATE with every field set, text or ids. */
static sl_wire_generate sample(int ids, uint32_t *idbuf)
{
    sl_wire_generate g = {0};
    g.model = (sl_wire_bytes){(const uint8_t *)"stories-260K.q8_0", 17};
    if (ids) {
        for (int i = 0; i < 5; i++)
            idbuf[i] = 1000u * (uint32_t)i + 7u;
        g.prompt_kind = SL_WIRE_IDS, g.prompt_len = 5, g.prompt = (const uint8_t *)idbuf;
    } else
        g.prompt_kind = SL_WIRE_TEXT, g.prompt = (const uint8_t *)"Once upon a time, caf\xc3\xa9", g.prompt_len = 23;
    g.max_tokens = 64, g.temperature = 0.7f, g.top_k = 40, g.top_p = 0.95f, g.min_p = 0.05f, g.repeat_penalty = 1.1f;
    g.seed = 0x1122334455667788ull, g.deadline_ms = 2500, g.options = SL_WIRE_O_STREAM, g.n_logprobs = 3;
    g.n_stop = 2, g.stop[0] = (sl_wire_bytes){(const uint8_t *)"\n\n", 2}, g.stop[1] = (sl_wire_bytes){(const uint8_t *)"The end", 7};
    return g;
}

Test(wire, ping_bytes_by_hand)
{
    size_t n;
    sl_err err;
    cr_assert_eq(sl_wire_put_empty(buf, sizeof buf, SL_WIRE_PING, 0x0102030405060708ull, &n, &err), SL_OK, "%s", err.msg);
    const uint8_t want[24] = {'S', 'L', 'W', '1', 1, 3, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(n, 24);
    cr_assert_arr_eq(buf, want, 24);
    size_t fl;
    cr_assert_eq(sl_wire_peek(buf, 23, &fl, &err), SL_OK);
    cr_assert_eq(fl, 0, "fewer than 24 bytes: read on");
    cr_assert_eq(sl_wire_peek(buf, 24, &fl, &err), SL_OK);
    cr_assert_eq(fl, 24);
}

Test(wire, generate_round_trips_with_every_field)
{
    uint32_t ids[5];
    const uint8_t mac[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    for (int kind = 0; kind < 2; kind++) {
        sl_wire_generate g = sample(kind, ids);
        g.cookie = 0xfeedfacecafebeefull, g.key_id = 77, g.mac = mac;
        size_t n;
        sl_err err;
        cr_assert_eq(sl_wire_put_generate(buf, sizeof buf, 42, SL_WIRE_F_COOKIE | SL_WIRE_F_MAC, &g, &n, &err), SL_OK,
                     "%s", err.msg);
        sl_wire_msg m;
        cr_assert_eq(sl_wire_decode(buf, n, &m, &err), SL_OK, "%s", err.msg);
        const sl_wire_generate *d = &m.u.gen;
        cr_assert_eq(m.h.type, SL_WIRE_GENERATE);
        cr_assert_eq(m.h.request_id, 42);
        cr_assert_eq(d->model.n, 17);
        cr_assert(memcmp(d->model.p, "stories-260K.q8_0", 17) == 0);
        cr_assert_eq(d->prompt_kind, kind);
        cr_assert_eq(d->prompt_len, g.prompt_len);
        if (kind)
            for (int i = 0; i < 5; i++)
                cr_assert_eq(sl_wire_u32(d->prompt, (size_t)i), ids[i]);
        else
            cr_assert(memcmp(d->prompt, g.prompt, g.prompt_len) == 0);
        cr_assert_eq(d->max_tokens, 64);
        cr_assert_eq(d->temperature, 0.7f);
        cr_assert_eq(d->top_k, 40);
        cr_assert_eq(d->top_p, 0.95f);
        cr_assert_eq(d->min_p, 0.05f);
        cr_assert_eq(d->repeat_penalty, 1.1f);
        cr_assert_eq(d->seed, 0x1122334455667788ull);
        cr_assert_eq(d->deadline_ms, 2500);
        cr_assert_eq(d->options, SL_WIRE_O_STREAM);
        cr_assert_eq(d->n_logprobs, 3);
        cr_assert_eq(d->n_stop, 2);
        cr_assert(d->stop[1].n == 7 && memcmp(d->stop[1].p, "The end", 7) == 0);
        cr_assert_eq(d->cookie, 0xfeedfacecafebeefull);
        cr_assert_eq(d->key_id, 77);
        cr_assert(memcmp(d->mac, mac, 32) == 0);
        cr_assert_eq(d->mac_covered, n - 32, "the MAC covers everything before it");
        uint8_t again[4096];
        size_t n2;
        cr_assert_eq(sl_wire_encode(&m, again, sizeof again, &n2, &err), SL_OK, "%s", err.msg);
        cr_assert_eq(n2, n);
        cr_assert_arr_eq(again, buf, n);
    }
}

Test(wire, replies_round_trip)
{
    sl_err err;
    size_t n;
    sl_wire_msg m;
    const uint32_t ids[3] = {5, 70000, 4294967295u};
    const uint8_t lp[] = {1, 5, 0, 0, 0, 0, 0, 0x80, 0xbf, /* token 1: id 5, -1.0 */
                          0, 2, 1, 0, 0, 0, 0, 0, 0, 0x80, 2, 0, 0, 0, 0, 0, 0, 0xc0}; /* -0.0, -2.0 */
    cr_assert_eq(sl_wire_put_tokens(buf, sizeof buf, 9, 3, ids, 3, (sl_wire_bytes){(const uint8_t *)"a\xe2\x82\xac", 4},
                                    (sl_wire_bytes){lp, sizeof lp}, &n, &err),
                 SL_OK, "%s", err.msg);
    cr_assert_eq(sl_wire_decode(buf, n, &m, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(m.h.seq, 3);
    cr_assert_eq(m.u.tokens.n, 3);
    cr_assert_eq(sl_wire_u32(m.u.tokens.ids, 2), 4294967295u);
    cr_assert_eq(m.u.tokens.logprobs.n, sizeof lp);
    /* a chunk may not end inside a character */
    cr_assert_eq(sl_wire_put_tokens(buf, sizeof buf, 9, 4, ids, 1, (sl_wire_bytes){(const uint8_t *)"a\xe2\x82", 3},
                                    (sl_wire_bytes){NULL, 0}, &n, &err),
                 SL_ERANGE);
    cr_assert(strstr(err.msg, "UTF-8"), "%s", err.msg);
    cr_assert_eq(n, 0);
    const char *sum = "xxh3-128:15fb0261ffe2eae423d0b919905ace8b";
    sl_wire_done d = {SL_WIRE_FIN_STOP, 12, 30, 100, 2000, 90000, 7, {(const uint8_t *)sum, strlen(sum)}};
    cr_assert_eq(sl_wire_put_done(buf, sizeof buf, 9, 5, &d, &n, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(sl_wire_decode(buf, n, &m, &err), SL_OK, "%s", err.msg);
    cr_assert(m.u.done.finish == SL_WIRE_FIN_STOP && m.u.done.generated_tokens == 30 && m.u.done.model_version == 7);
    cr_assert(m.u.done.checksum.n == strlen(sum) && !memcmp(m.u.done.checksum.p, sum, strlen(sum)));
    cr_assert_eq(sl_wire_put_error(buf, sizeof buf, 9, 6, SL_WERR_BUSY, "queue full", &n, &err), SL_OK);
    cr_assert_eq(sl_wire_decode(buf, n, &m, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(m.u.error.code, SL_WERR_BUSY);
    cr_assert_str_eq(sl_wire_code_name(m.u.error.code), "BUSY");
    /* a long message is cut to 512 bytes at a character boundary */
    char longmsg[1200];
    for (int i = 0; i < 599; i++)
        memcpy(longmsg + 2 * i, "\xc3\xa9", 2);
    longmsg[1198] = 0;
    cr_assert_eq(sl_wire_put_error(buf, sizeof buf, 9, 7, SL_WERR_INTERNAL, longmsg, &n, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(sl_wire_decode(buf, n, &m, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(m.u.error.msg.n, 512);
    const uint32_t seqs[2] = {3, 9};
    cr_assert_eq(sl_wire_put_resend(buf, sizeof buf, 9, seqs, 2, &n, &err), SL_OK);
    cr_assert_eq(sl_wire_decode(buf, n, &m, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(sl_wire_u32(m.u.resend.seqs, 1), 9);
    cr_assert_eq(sl_wire_put_u64(buf, sizeof buf, SL_WIRE_COOKIE, 9, 0xabcdef, &n, &err), SL_OK);
    cr_assert_eq(sl_wire_decode(buf, n, &m, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(m.u.value, 0xabcdef);
    cr_assert_eq(sl_wire_put_empty(buf, 23, SL_WIRE_CANCEL, 9, &n, &err), SL_ERANGE, "a 23-byte buffer");
    /* text alone (the rest of a long text, a final U+FFFD) is a TOKENS with no ids; nothing at all is not */
    cr_assert_eq(sl_wire_put_tokens(buf, sizeof buf, 9, 8, NULL, 0, (sl_wire_bytes){(const uint8_t *)"\xef\xbf\xbd", 3},
                                    (sl_wire_bytes){NULL, 0}, &n, &err),
                 SL_OK, "%s", err.msg);
    cr_assert_eq(sl_wire_decode(buf, n, &m, &err), SL_OK, "%s", err.msg);
    cr_assert(m.u.tokens.n == 0 && m.u.tokens.text.n == 3);
    cr_assert_eq(sl_wire_put_tokens(buf, sizeof buf, 9, 8, NULL, 0, (sl_wire_bytes){NULL, 0}, (sl_wire_bytes){NULL, 0},
                                    &n, &err),
                 SL_ERANGE);
    cr_assert(strstr(err.msg, "empty TOKENS"), "%s", err.msg);
}

/* One field of a valid GENERATE changed: the decoder names it. */
typedef void (*mutate_fn)(sl_wire_generate *g);
static void m_model_empty(sl_wire_generate *g) { g->model.n = 0; }
static void m_model_char(sl_wire_generate *g) { g->model.p = (const uint8_t *)"bad/name"; g->model.n = 8; }
static void m_kind(sl_wire_generate *g) { g->prompt_kind = 2; }
static void m_ids_zero(sl_wire_generate *g) { g->prompt_kind = SL_WIRE_IDS, g->prompt_len = 0; }
static void m_text_nul(sl_wire_generate *g) { g->prompt = (const uint8_t *)"a\0b", g->prompt_len = 3; }
static void m_overlong(sl_wire_generate *g) { g->prompt = (const uint8_t *)"\xc0\x80", g->prompt_len = 2; }
static void m_surrogate(sl_wire_generate *g) { g->prompt = (const uint8_t *)"\xed\xa0\x80", g->prompt_len = 3; }
static void m_toobig(sl_wire_generate *g) { g->prompt = (const uint8_t *)"\xf4\x90\x80\x80", g->prompt_len = 4; }
static void m_cut(sl_wire_generate *g) { g->prompt = (const uint8_t *)"ab\xe2\x82", g->prompt_len = 4; }
static void m_max0(sl_wire_generate *g) { g->max_tokens = 0; }
static void m_maxbig(sl_wire_generate *g) { g->max_tokens = SL_WIRE_MAX_TOKENS + 1; }
static void m_tnan(sl_wire_generate *g) { g->temperature = NAN; }
static void m_tinf(sl_wire_generate *g) { g->temperature = INFINITY; }
static void m_tneg(sl_wire_generate *g) { g->temperature = -0.5f; }
static void m_topk(sl_wire_generate *g) { g->top_k = (1u << 20) + 1; }
static void m_topp0(sl_wire_generate *g) { g->top_p = 0.0f; }
static void m_minp1(sl_wire_generate *g) { g->min_p = 1.0f; }
static void m_rep(sl_wire_generate *g) { g->repeat_penalty = 0.5f; }
static void m_deadline(sl_wire_generate *g) { g->deadline_ms = SL_WIRE_DEADLINE_MAX + 1; }
static void m_options(sl_wire_generate *g) { g->options = 0x80; }
static void m_logprobs(sl_wire_generate *g) { g->n_logprobs = SL_WIRE_LOGPROBS_MAX + 1; }
static void m_nstop(sl_wire_generate *g) { g->n_stop = SL_WIRE_STOPS_MAX + 1; }
static void m_stop0(sl_wire_generate *g) { g->stop[0].n = 0; }

Test(wire, every_field_is_range_checked)
{
    const struct {
        mutate_fn f;
        const char *field;
    } cases[] = {{m_model_empty, "model_len"}, {m_model_char, "model name"}, {m_kind, "prompt_kind"},
                 {m_ids_zero, "prompt_len"},   {m_text_nul, "prompt"},       {m_overlong, "prompt"},
                 {m_surrogate, "prompt"},      {m_toobig, "prompt"},         {m_cut, "prompt"},
                 {m_max0, "max_tokens"},       {m_maxbig, "max_tokens"},     {m_tnan, "temperature"},
                 {m_tinf, "temperature"},      {m_tneg, "temperature"},      {m_topk, "top_k"},
                 {m_topp0, "top_p"},           {m_minp1, "min_p"},           {m_rep, "repeat_penalty"},
                 {m_deadline, "deadline_ms"},  {m_options, "options"},       {m_logprobs, "n_logprobs"},
                 {m_nstop, "n_stop"},          {m_stop0, "stop length"}};
    uint32_t ids[5];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_wire_generate g = sample(0, ids);
        cases[i].f(&g);
        size_t n;
        sl_err err = {0};
        const sl_status st = sl_wire_put_generate(buf, sizeof buf, 1, 0, &g, &n, &err);
        cr_assert_neq(st, SL_OK, "case %zu (%s) was accepted", i, cases[i].field);
        cr_assert(strstr(err.msg, cases[i].field), "case %zu: '%s' does not name %s", i, err.msg, cases[i].field);
        cr_assert_eq(n, 0);
    }
}

Test(wire, model_names)
{
    char max[SL_WIRE_MODEL_MAX + 2];
    memset(max, 'a', sizeof max);
    cr_assert(sl_wire_model_name_ok("stories260K.q8_0-b", 18));
    cr_assert(sl_wire_model_name_ok("Az09._-", 7));
    cr_assert(sl_wire_model_name_ok(max, SL_WIRE_MODEL_MAX));
    cr_assert(!sl_wire_model_name_ok(max, SL_WIRE_MODEL_MAX + 1), "over the limit");
    cr_assert(!sl_wire_model_name_ok("", 0), "empty");
    const char *bad[] = {"a b", "a/b", "a:b", "a\xc3\xa9", "a+b", "a~"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(!sl_wire_model_name_ok(bad[i], strlen(bad[i])), "'%s' passed", bad[i]);
    cr_assert(!sl_wire_model_name_ok("a\0b", 3), "a NUL inside");
    cr_assert(sl_wire_model_name_ok("ab\0", 2), "only n bytes count");
}

Test(wire, headers_truncation_and_trailing_bytes)
{
    uint32_t ids[5];
    sl_wire_generate g = sample(1, ids);
    size_t n;
    sl_err err;
    cr_assert_eq(sl_wire_put_generate(buf, sizeof buf, 1, 0, &g, &n, &err), SL_OK, "%s", err.msg);
    sl_wire_msg m;
    for (size_t k = 0; k < n; k++) /* every prefix is refused */
        cr_assert_neq(sl_wire_decode(buf, k, &m, &err), SL_OK, "a %zu-byte prefix decoded", k);
    buf[n] = 0;
    cr_assert_eq(sl_wire_decode(buf, n + 1, &m, &err), SL_EFORMAT, "a trailing byte");
    const struct {
        size_t at;
        uint8_t v;
        const char *what;
    } bad[] = {{0, 'X', "magic"}, {4, 2, "version"}, {5, 77, "type"}, {6, 4, "flags"}, {19, 0x40, "body_len"},
               {20, 1, "seq"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t save = buf[bad[i].at];
        buf[bad[i].at] = bad[i].v;
        cr_assert_neq(sl_wire_decode(buf, n, &m, &err), SL_OK, "%s", bad[i].what);
        cr_assert(strstr(err.msg, bad[i].what), "'%s' does not name %s", err.msg, bad[i].what);
        size_t fl;
        cr_assert_neq(sl_wire_peek(buf, n, &fl, &err), SL_OK, "peek accepts a bad %s", bad[i].what);
        buf[bad[i].at] = save;
    }
    /* a body over 1 MiB is refused from the header alone */
    buf[18] = 0x20;
    size_t fl;
    cr_assert_eq(sl_wire_peek(buf, 24, &fl, &err), SL_ERANGE);
}

/* Random damage to valid messages of every type: never a crash, and what
 * decodes encodes back to the same bytes (run under ASan in CI). */
Test(wire, random_damage_decodes_to_an_error_or_round_trips)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    uint8_t msgs[6][1024];
    size_t lens[6];
    uint32_t ids[5];
    sl_err err;
    for (int k = 0; k < 2; k++) {
        sl_wire_generate g = sample(k, ids);
        cr_assert_eq(sl_wire_put_generate(msgs[k], 1024, 5, 0, &g, &lens[k], &err), SL_OK);
    }
    const uint32_t t[2] = {1, 2};
    cr_assert_eq(sl_wire_put_tokens(msgs[2], 1024, 5, 1, t, 2, (sl_wire_bytes){(const uint8_t *)"hi", 2},
                                    (sl_wire_bytes){NULL, 0}, &lens[2], &err),
                 SL_OK);
    sl_wire_done d = {0, 1, 2, 3, 4, 5, 6, {(const uint8_t *)"xxh3-128:00", 11}};
    cr_assert_eq(sl_wire_put_done(msgs[3], 1024, 5, 2, &d, &lens[3], &err), SL_OK);
    cr_assert_eq(sl_wire_put_error(msgs[4], 1024, 5, 3, SL_WERR_DEADLINE, "late", &lens[4], &err), SL_OK);
    cr_assert_eq(sl_wire_put_resend(msgs[5], 1024, 5, t, 2, &lens[5], &err), SL_OK);
    int decoded = 0;
    for (int it = 0; it < 200000; it++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        const int which = (int)(s % 6);
        uint8_t b[1100];
        size_t n = lens[which];
        memcpy(b, msgs[which], n);
        for (int flips = 1 + (int)((s >> 8) % 3); flips > 0; flips--) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            b[(s >> 16) % n] ^= (uint8_t)(1u << ((s >> 40) % 8));
        }
        if ((s >> 50) % 4 == 0) /* and sometimes a cut or an extension */
            n = (size_t)((s >> 20) % (n + 40));
        sl_wire_msg m;
        if (sl_wire_decode(b, n, &m, &err) != SL_OK)
            continue;
        decoded++;
        uint8_t again[1100];
        size_t n2;
        cr_assert_eq(sl_wire_encode(&m, again, sizeof again, &n2, &err), SL_OK, "iteration %d: %s", it, err.msg);
        cr_assert(n2 == n && memcmp(again, b, n) == 0, "iteration %d: a decoded message encodes differently", it);
    }
    cr_assert_gt(decoded, 1000, "damage that still decodes (in-range values) must be common: %d", decoded);
}

/* The seeds tests/fuzz/make_wire_seeds.py wrote from the document with an
 * independent encoder: valid_* decode and round-trip, bad_* are refused. */
Test(wire, seeds_from_the_document_decode)
{
    const char *names[] = {"valid_ping",  "valid_cancel", "valid_generate_text", "valid_generate_utf8",
                           "valid_generate_ids", "valid_resend", "valid_tokens", "valid_tokens_logprobs",
                           "valid_done",  "valid_error",  "valid_pong",  "valid_cookie",
                           "bad_trailing", "bad_overlong", "bad_version"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tests/data/fuzz/wire/%s", SL_SOURCE_DIR, names[i]);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        const size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        sl_wire_msg m;
        sl_err err = {0};
        const sl_status st = sl_wire_decode(buf, n, &m, &err);
        if (names[i][0] == 'b') {
            cr_assert_neq(st, SL_OK, "%s decoded", names[i]);
            continue;
        }
        cr_assert_eq(st, SL_OK, "%s: %s", names[i], err.msg);
        uint8_t again[4096];
        size_t n2;
        cr_assert_eq(sl_wire_encode(&m, again, sizeof again, &n2, &err), SL_OK, "%s: %s", names[i], err.msg);
        cr_assert(n2 == n && memcmp(again, buf, n) == 0, "%s: encodes differently", names[i]);
    }
}

/* Request MACs: what is signed verifies with its key, not with another,
 * and not after a byte of it changes. */
Test(wire, macs_sign_and_verify)
{
    uint32_t ids[5];
    sl_wire_generate g = sample(0, ids);
    sl_mac_key k, other;
    cr_assert_eq(sl_mac_key_parse("7:000102030405060708090a0b0c0d0e0f", &k), 0);
    cr_assert_eq(sl_mac_key_parse("7:100102030405060708090a0b0c0d0e0f", &other), 0);
    cr_assert_eq(sl_mac_key_parse("7:0001", &other) == 0, 0, "a key under 16 bytes");
    cr_assert_eq(sl_mac_key_parse("x:000102030405060708090a0b0c0d0e0f", &other) == 0, 0, "a bad id");
    cr_assert_eq(sl_mac_key_parse("7:100102030405060708090a0b0c0d0e0f", &other), 0);
    size_t n;
    sl_err err;
    cr_assert_eq(sl_wire_put_generate_signed(buf, sizeof buf, 5, 0, &g, &k, &n, &err), SL_OK, "%s", err.msg);
    sl_wire_msg m;
    cr_assert_eq(sl_wire_decode(buf, n, &m, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(m.u.gen.key_id, 7);
    cr_assert(sl_mac_verify(&k, buf, &m.u.gen));
    cr_assert(!sl_mac_verify(&other, buf, &m.u.gen));
    buf[30] ^= 1; /* inside the model name's bytes: still decodes if the name stays valid */
    if (sl_wire_decode(buf, n, &m, NULL) == SL_OK)
        cr_assert(!sl_mac_verify(&k, buf, &m.u.gen), "a changed byte still verifies");
}
