/* sl_utf8.c - well-formed UTF-8, validated and streamed (sl_utf8.h). */
#include <string.h>

#include "sl_utf8.h"

static const uint8_t replacement[3] = {0xef, 0xbf, 0xbd};

/* RFC 3629, section 4: each lead byte range, its sequence's length and the
 * range its second byte must be in (the rest are 80..BF).  The narrowed
 * second bytes are what keep out overlong forms (E0, F0), surrogates (ED)
 * and code points past U+10FFFF (F4); C0, C1 and F5..FF lead nothing. */
static const struct {
    uint8_t first, last, len, lo, hi;
} rfc3629[] = {
    {0x00, 0x7f, 1, 0x80, 0xbf}, {0xc2, 0xdf, 2, 0x80, 0xbf}, {0xe0, 0xe0, 3, 0xa0, 0xbf},
    {0xe1, 0xec, 3, 0x80, 0xbf}, {0xed, 0xed, 3, 0x80, 0x9f}, {0xee, 0xef, 3, 0x80, 0xbf},
    {0xf0, 0xf0, 4, 0x90, 0xbf}, {0xf1, 0xf3, 4, 0x80, 0xbf}, {0xf4, 0xf4, 4, 0x80, 0x8f},
};

/* Length of the sequence lead byte c starts (0: not a lead byte), and the
 * range its second byte must be in. */
static int lead(uint8_t c, uint8_t *lo, uint8_t *hi)
{
    for (size_t i = 0; i < sizeof rfc3629 / sizeof rfc3629[0]; i++)
        if (c >= rfc3629[i].first && c <= rfc3629[i].last) {
            *lo = rfc3629[i].lo, *hi = rfc3629[i].hi;
            return rfc3629[i].len;
        }
    *lo = 0x80, *hi = 0xbf;
    return 0;
}

bool sl_utf8_valid(const uint8_t *s, size_t n, bool allow_nul)
{
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) { /* ASCII, most of any text: no table walk */
            if (!s[i] && !allow_nul)
                return false;
            i++;
            continue;
        }
        uint8_t lo, hi;
        const int len = lead(s[i], &lo, &hi);
        if (!len || (size_t)len > n - i) /* not a lead byte, or a character cut off */
            return false;
        for (int j = 1; j < len; j++, lo = 0x80, hi = 0xbf)
            if (s[i + (size_t)j] < lo || s[i + (size_t)j] > hi)
                return false;
        i += (size_t)len;
    }
    return true;
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
