/* sl_utf8.h - well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), checked and produced from one
 * lead-byte table: the wire codec validates text with it, and the server
 * streams generated text out through it.
 *
 * Token pieces are bytes: a character may straddle two tokens, and byte
 * tokens may make sequences that are not UTF-8 at all.  The wire protocol
 * carries whole, well-formed characters only, so a stream holds back an
 * incomplete tail until the next piece completes it, and replaces what can
 * never be UTF-8 with U+FFFD (the token ids stay exact). */
#ifndef SL_UTF8_H
#define SL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether the n bytes at s are well-formed UTF-8, every character whole;
 * a NUL byte (U+0000) counts only where allow_nul is true. */
bool sl_utf8_valid(const uint8_t *s, size_t n, bool allow_nul);

typedef struct sl_utf8_stream {
    uint8_t tail[4]; /* an incomplete character held back */
    int n_tail;
} sl_utf8_stream;

/* Appends piece to the stream; writes what is ready to out (at most
 * 3 * (n + 4) bytes) and returns its length. */
size_t sl_utf8_push(sl_utf8_stream *s, const uint8_t *piece, size_t n, uint8_t *out);
/* The end: a held-back tail becomes U+FFFD.  out needs 3 bytes; returns the length. */
size_t sl_utf8_flush(sl_utf8_stream *s, uint8_t *out);

#endif
