/* The UTF-8 validator and stream (common/sl_utf8.h): RFC 3629's edges on
 * both sides of each, and the stream's held-back tails and U+FFFD. */
#include <criterion/criterion.h>
#include <string.h>

#include "sl_utf8.h"

static bool valid(const char *s, size_t n, bool nul) { return sl_utf8_valid((const uint8_t *)s, n, nul); }
#define V(lit, nul) valid(lit, sizeof lit - 1, nul)

Test(utf8, well_formed_text_passes)
{
    cr_assert(V("", false));
    cr_assert(V("plain ASCII ~\x7f", false));
    cr_assert(V("\xc2\x80\xdf\xbf", false), "U+0080, U+07FF");
    cr_assert(V("\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf", false), "U+0800, U+D7FF, U+E000, U+FFFF");
    cr_assert(V("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", false), "U+10000, U+10FFFF");
    cr_assert(V("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", false));
}

Test(utf8, overlongs_surrogates_and_past_10ffff_fail)
{
    const char *bad[] = {
        "\xc0\x80", "\xc1\xbf",                 /* overlong 2-byte (U+0000, U+007F) */
        "\xe0\x80\x80", "\xe0\x9f\xbf",         /* overlong 3-byte */
        "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf", /* overlong 4-byte */
        "\xed\xa0\x80", "\xed\xbf\xbf",         /* surrogates U+D800, U+DFFF */
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf7\xbf\xbf\xbf", /* past U+10FFFF */
        "\xf8\x88\x80\x80\x80", "\xfe", "\xff", /* no such lead bytes */
        "\x80", "a\xbf",                        /* a continuation byte alone */
        "\xc3\x28", "\xe2\x82\x28",             /* a lead byte not continued */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(!valid(bad[i], strlen(bad[i]), true), "case %zu passed", i);
}

Test(utf8, truncated_characters_fail)
{
    const char whole[] = "\xf0\x9f\x98\x80";
    for (size_t k = 1; k < 4; k++)
        cr_assert(!valid(whole, k, true), "%zu bytes of a 4-byte character", k);
    cr_assert(!V("ab\xe2\x82", true));
    cr_assert(!V("\xc3", true));
    cr_assert(valid(whole, 4, true));
}

Test(utf8, nul_only_where_allowed)
{
    cr_assert(V("a\0b", true));
    cr_assert(!V("a\0b", false));
    cr_assert(!V("\0", false));
    cr_assert(V("\0", true));
}

static size_t push(sl_utf8_stream *s, const char *piece, size_t n, uint8_t *out)
{
    return sl_utf8_push(s, (const uint8_t *)piece, n, out);
}

Test(utf8, stream_holds_back_a_split_character)
{
    sl_utf8_stream s = {0};
    uint8_t out[64];
    cr_assert_eq(push(&s, "caf\xc3", 4, out), 3);
    cr_assert_eq(memcmp(out, "caf", 3), 0);
    cr_assert_eq(push(&s, "\xa9!", 2, out), 3);
    cr_assert_eq(memcmp(out, "\xc3\xa9!", 3), 0);
    cr_assert_eq(push(&s, "\xf0\x9f", 2, out), 0);
    cr_assert_eq(push(&s, "\x98", 1, out), 0);
    cr_assert_eq(push(&s, "\x80", 1, out), 4);
    cr_assert_eq(memcmp(out, "\xf0\x9f\x98\x80", 4), 0);
    cr_assert_eq(sl_utf8_flush(&s, out), 0);
}

Test(utf8, stream_replaces_what_is_never_utf8)
{
    sl_utf8_stream s = {0};
    uint8_t out[64];
    /* a lone continuation, an invalid lead, a surrogate's lead broken by 'x', an overlong E0 */
    const char in[] = "\x80\xff\xed\xa0x\xe0\x80";
    const size_t n = push(&s, in, sizeof in - 1, out);
    const char want[] = "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx\xef\xbf\xbd\xef\xbf\xbd";
    cr_assert_eq(n, sizeof want - 1);
    cr_assert_eq(memcmp(out, want, n), 0);
    cr_assert(sl_utf8_valid(out, n, false), "the stream's output is itself valid");
    /* a tail left at the end becomes U+FFFD */
    cr_assert_eq(push(&s, "\xe2\x82", 2, out), 0);
    cr_assert_eq(sl_utf8_flush(&s, out), 3);
    cr_assert_eq(memcmp(out, "\xef\xbf\xbd", 3), 0);
    cr_assert_eq(sl_utf8_flush(&s, out), 0);
}
