/* mac.c - request MACs with OpenSSL's HMAC (sl_mac.h). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "sl_mac.h"

int sl_mac_key_parse(const char *s, sl_mac_key *k)
{
    char *end;
    const unsigned long id = strtoul(s, &end, 10);
    if (end == s || *end != ':' || id > UINT32_MAX)
        return -1;
    const char *h = end + 1;
    const size_t n = strlen(h);
    if (n % 2 || n / 2 < 16 || n / 2 > SL_MAC_KEY_MAX)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        char two[3] = {h[2 * i], h[2 * i + 1], 0};
        if (!strchr("0123456789abcdefABCDEF", two[0]) || !strchr("0123456789abcdefABCDEF", two[1]) ||
            sscanf(two, "%2x", &v) != 1)
            return -1;
        k->key[i] = (uint8_t)v;
    }
    k->id = (uint32_t)id;
    k->len = n / 2;
    return 0;
}

static int hmac(const sl_mac_key *k, const uint8_t *msg, size_t n, uint8_t out[SL_WIRE_MAC_LEN])
{
    unsigned int len = 0;
    return HMAC(EVP_sha256(), k->key, (int)k->len, msg, n, out, &len) && len == SL_WIRE_MAC_LEN ? 0 : -1;
}

sl_status sl_wire_put_generate_signed(uint8_t *out, size_t cap, uint64_t request_id, uint16_t flags,
                                      const sl_wire_generate *g, const sl_mac_key *k, size_t *len, sl_err *err)
{
    static const uint8_t zeros[SL_WIRE_MAC_LEN];
    sl_wire_generate s = *g;
    s.key_id = k->id;
    s.mac = zeros; /* a place for it; the MAC covers everything before */
    sl_status st = sl_wire_put_generate(out, cap, request_id, flags | SL_WIRE_F_MAC, &s, len, err);
    if (st)
        return st;
    if (hmac(k, out, *len - SL_WIRE_MAC_LEN, out + *len - SL_WIRE_MAC_LEN))
        return sl_err_set(err, SL_EIO, "HMAC-SHA256 failed");
    return SL_OK;
}

int sl_mac_verify(const sl_mac_key *k, const uint8_t *buf, const sl_wire_generate *g)
{
    uint8_t want[SL_WIRE_MAC_LEN];
    return g->mac && k->id == g->key_id && hmac(k, buf, g->mac_covered, want) == 0 &&
           CRYPTO_memcmp(want, g->mac, SL_WIRE_MAC_LEN) == 0;
}
