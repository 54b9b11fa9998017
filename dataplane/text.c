/* text.c - well-formed UTF-8 out of a stream of token pieces (sl_text.h). */
#include <string.h>

#include "sl_text.h"

static const uint8_t replacement[3] = {0xef, 0xbf, 0xbd};

/* Length of the sequence lead byte c starts (0: not a lead byte), and the
 * range its second byte must be in (RFC 3629's table: no overlongs, no
 * surrogates, nothing past U+10FFFF). */
static int lead(uint8_t c, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80, *hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef) {
        if (c == 0xe0)
            *lo = 0xa0;
        if (c == 0xed)
            *hi = 0x9f;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (c == 0xf0)
            *lo = 0x90;
        if (c == 0xf4)
            *hi = 0x8f;
        return 4;
    }
    return 0;
}

size_t sl_utf8_push(sl_utf8_stream *s, const uint8_t *piece, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t c = piece[i];
        if (s->n_tail) { /* inside a character: does c continue it? */
            uint8_t lo, hi;
            const int len = lead(s->tail[0], &lo, &hi);
            if (s->n_tail > 1)
                lo = 0x80, hi = 0xbf;
            if (c >= lo && c <= hi) {
                s->tail[s->n_tail++] = c;
                if (s->n_tail == len) {
                    memcpy(out + o, s->tail, (size_t)len);
                    o += (size_t)len;
                    s->n_tail = 0;
                }
                continue;
            }
            memcpy(out + o, replacement, 3); /* a broken character, then c afresh */
            o += 3;
            s->n_tail = 0;
        }
        uint8_t lo, hi;
        const int len = lead(c, &lo, &hi);
        if (len == 1)
            out[o++] = c;
        else if (len == 0) {
            memcpy(out + o, replacement, 3);
            o += 3;
        } else
            s->tail[s->n_tail++] = c;
    }
    return o;
}

size_t sl_utf8_flush(sl_utf8_stream *s, uint8_t *out)
{
    if (!s->n_tail)
        return 0;
    s->n_tail = 0;
    memcpy(out, replacement, 3);
    return 3;
}
