/* sl_wire.h - the client/server wire protocol, version 1 (docs/protocol.md).
 *
 * The decoder is a pure function over (const uint8_t *, size_t): kernel
 * sockets, DPDK and the fuzzer feed it the same bytes.  It never reads past
 * them, never allocates, and answers a malformed message with SL_EFORMAT or
 * SL_ERANGE and a message naming the field.  Decoded messages are views:
 * their pointers point into the buffer, which must outlive them.
 *
 * The encoders write into caller buffers and check what they wrote with the
 * decoder, so nothing out of the contract's ranges leaves a sluice process. */
#ifndef SL_WIRE_H
#define SL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_error.h"
#include "sl_le.h"

#define SL_WIRE_MAGIC 0x31574C53u /* "SLW1" */
#define SL_WIRE_VERSION 1
#define SL_WIRE_HEADER 24
#define SL_WIRE_MAX_BODY (1u << 20)
#define SL_WIRE_UDP_MAX 1400 /* a request datagram, header included */

enum {
    SL_WIRE_GENERATE = 1,
    SL_WIRE_CANCEL = 2,
    SL_WIRE_PING = 3,
    SL_WIRE_RESEND = 4,
    SL_WIRE_TOKENS = 129,
    SL_WIRE_DONE = 130,
    SL_WIRE_ERROR = 131,
    SL_WIRE_PONG = 132,
    SL_WIRE_COOKIE = 133,
};

enum { SL_WIRE_F_COOKIE = 1u << 0, SL_WIRE_F_MAC = 1u << 1 };      /* header flags (requests) */
enum { SL_WIRE_O_STREAM = 1u << 0, SL_WIRE_O_NO_BOS = 1u << 1 };   /* GENERATE options */
enum { SL_WIRE_TEXT = 0, SL_WIRE_IDS = 1 };                        /* prompt kinds */

/* ERROR codes */
enum {
    SL_WERR_BAD_REQUEST = 1,
    SL_WERR_UNKNOWN_MODEL = 2,
    SL_WERR_TOO_LARGE = 3,
    SL_WERR_CONTEXT_FULL = 4,
    SL_WERR_BUSY = 5,
    SL_WERR_CANCELLED = 6,
    SL_WERR_DEADLINE = 7,
    SL_WERR_INTERNAL = 8,
    SL_WERR_UNAUTHORIZED = 9,
    SL_WERR_UNVERIFIED = 10,
    SL_WERR_COUNT
};
const char *sl_wire_code_name(int code); /* "BAD_REQUEST", ...; "?" if unknown */

/* DONE's finish reasons */
enum { SL_WIRE_FIN_LENGTH = 0, SL_WIRE_FIN_EOS = 1, SL_WIRE_FIN_STOP = 2, SL_WIRE_FIN_CONTEXT = 3 };

/* Limits of the contract. */
#define SL_WIRE_MODEL_MAX 64
#define SL_WIRE_TEXT_MAX 65536
#define SL_WIRE_IDS_MAX 16384
#define SL_WIRE_MAX_TOKENS 65536
#define SL_WIRE_STOPS_MAX 4
#define SL_WIRE_STOP_LEN_MAX 64
#define SL_WIRE_LOGPROBS_MAX 20
#define SL_WIRE_RESEND_MAX 64
#define SL_WIRE_CHUNK_MAX 256
#define SL_WIRE_ERRMSG_MAX 512
#define SL_WIRE_CHECKSUM_MAX 64
#define SL_WIRE_DEADLINE_MAX 3600000u
#define SL_WIRE_MAC_LEN 32

/* Whether the n bytes at s (no NUL needed) are a model name: 1..SL_WIRE_MODEL_MAX
 * of A-Z a-z 0-9 . _ - (what GENERATE may name, and so what a model may be
 * loaded as). */
bool sl_wire_model_name_ok(const char *s, size_t n);

typedef struct sl_wire_bytes {
    const uint8_t *p;
    size_t n;
} sl_wire_bytes;

typedef struct sl_wire_header {
    uint8_t version, type;
    uint16_t flags;
    uint64_t request_id;
    uint32_t body_len, seq;
} sl_wire_header;

typedef struct sl_wire_generate {
    sl_wire_bytes model;
    uint8_t prompt_kind;
    uint32_t prompt_len;  /* bytes of text, or ids */
    const uint8_t *prompt; /* text, or prompt_len little-endian u32 ids (sl_wire_id) */
    uint32_t max_tokens;
    float temperature;
    uint32_t top_k;
    float top_p, min_p, repeat_penalty;
    uint64_t seed;
    uint32_t deadline_ms;
    uint8_t options, n_logprobs, n_stop;
    sl_wire_bytes stop[SL_WIRE_STOPS_MAX];
    uint64_t cookie;       /* flag COOKIE */
    uint32_t key_id;       /* flag MAC */
    const uint8_t *mac;    /* flag MAC: 32 bytes */
    size_t mac_covered;    /* bytes of the message the MAC covers (header included) */
} sl_wire_generate;

typedef struct sl_wire_tokens {
    uint16_t n;
    const uint8_t *ids; /* n little-endian u32 */
    sl_wire_bytes text;
    sl_wire_bytes logprobs; /* raw: n x (u8 k, k x (u32 id, f32 logprob)); empty when not asked */
} sl_wire_tokens;

typedef struct sl_wire_done {
    uint8_t finish;
    uint32_t prompt_tokens, generated_tokens;
    uint64_t queue_us, ttft_us, total_us, model_version;
    sl_wire_bytes checksum;
} sl_wire_done;

typedef struct sl_wire_msg {
    sl_wire_header h;
    union {
        sl_wire_generate gen;
        struct {
            uint16_t n;
            const uint8_t *seqs; /* n little-endian u32 */
        } resend;
        sl_wire_tokens tokens;
        sl_wire_done done;
        struct {
            uint16_t code;
            sl_wire_bytes msg;
        } error;
        uint64_t value; /* PONG's time, COOKIE's cookie */
    } u;
} sl_wire_msg;

/* The frame at buf: *frame_len = 24 + body_len once the header is there
 * and valid, 0 when fewer than 24 bytes have come (a stream reads on). */
sl_status sl_wire_peek(const uint8_t *buf, size_t len, size_t *frame_len, sl_err *err);
/* The header alone (the body may be missing or bad): whom an error about
 * the rest of a message goes to.  SL_EFORMAT when it is short or not ours. */
sl_status sl_wire_peek_header(const uint8_t *buf, size_t len, sl_wire_header *h, sl_err *err);
/* Decodes exactly one whole message of len bytes. */
sl_status sl_wire_decode(const uint8_t *buf, size_t len, sl_wire_msg *m, sl_err *err);
/* Element i of a little-endian u32 array (prompt ids, token ids, seqs). */
static inline uint32_t sl_wire_u32(const uint8_t *p, size_t i)
{
    return sl_le_load_u32(p + 4 * i);
}

/* Encoders: the whole message into out (cap bytes), its length in *len.
 * SL_ERANGE if it does not fit or breaks the contract (with the field). */
sl_status sl_wire_put_generate(uint8_t *out, size_t cap, uint64_t request_id, uint16_t flags, const sl_wire_generate *g,
                               size_t *len, sl_err *err);
/* CANCEL, PING: a header alone. */
sl_status sl_wire_put_empty(uint8_t *out, size_t cap, int type, uint64_t request_id, size_t *len, sl_err *err);
sl_status sl_wire_put_resend(uint8_t *out, size_t cap, uint64_t request_id, const uint32_t *seqs, uint16_t n,
                             size_t *len, sl_err *err);
sl_status sl_wire_put_tokens(uint8_t *out, size_t cap, uint64_t request_id, uint32_t seq, const uint32_t *ids,
                             uint16_t n, sl_wire_bytes text, sl_wire_bytes logprobs, size_t *len, sl_err *err);
sl_status sl_wire_put_done(uint8_t *out, size_t cap, uint64_t request_id, uint32_t seq, const sl_wire_done *d,
                           size_t *len, sl_err *err);
sl_status sl_wire_put_error(uint8_t *out, size_t cap, uint64_t request_id, uint32_t seq, uint16_t code,
                            const char *msg, size_t *len, sl_err *err);
/* PONG (server time) and COOKIE: a u64 body. */
sl_status sl_wire_put_u64(uint8_t *out, size_t cap, int type, uint64_t request_id, uint64_t value, size_t *len,
                          sl_err *err);

/* Any decoded message written again (the codec's round trip: the same
 * bytes).  For tests, the fuzzer, and relaying. */
sl_status sl_wire_encode(const sl_wire_msg *m, uint8_t *out, size_t cap, size_t *len, sl_err *err);

#endif
