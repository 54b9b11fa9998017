/* sl_mac.h - request MACs (docs/protocol.md): HMAC-SHA256 with a client's
 * key over the message up to the MAC, header included (OpenSSL). */
#ifndef SL_MAC_H
#define SL_MAC_H

#include <stddef.h>
#include <stdint.h>

#include "sl_wire.h"

#define SL_MAC_KEY_MAX 64

typedef struct sl_mac_key {
    uint32_t id;
    uint8_t key[SL_MAC_KEY_MAX];
    size_t len;
} sl_mac_key;

/* "ID:HEX" (a decimal id, 16..64 bytes of key in hex) into k; 0 or -1. */
int sl_mac_key_parse(const char *s, sl_mac_key *k);
/* A GENERATE signed with k: flag MAC set, key id and MAC appended. */
sl_status sl_wire_put_generate_signed(uint8_t *out, size_t cap, uint64_t request_id, uint16_t flags,
                                      const sl_wire_generate *g, const sl_mac_key *k, size_t *len, sl_err *err);
/* Whether a decoded GENERATE's MAC (it has one) is k's over buf. */
int sl_mac_verify(const sl_mac_key *k, const uint8_t *buf, const sl_wire_generate *g);

#endif
