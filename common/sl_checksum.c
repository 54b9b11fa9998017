#include "sl_checksum.h"

#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "sl_le.h"

struct sl_checksum {
    XXH3_state_t *st;
};

sl_checksum *sl_checksum_new(void)
{
    sl_checksum *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    c->st = XXH3_createState();
    if (!c->st) {
        free(c);
        return NULL;
    }
    XXH3_128bits_reset(c->st);
    return c;
}

void sl_checksum_free(sl_checksum *c)
{
    if (c) {
        XXH3_freeState(c->st);
        free(c);
    }
}

void sl_checksum_tensor_header(sl_checksum *c, const char *name, size_t name_len, uint32_t type,
                               uint32_t n_dims, const uint64_t *ne)
{
    uint8_t buf[8];
    sl_le_store_u64(buf, name_len);
    XXH3_128bits_update(c->st, buf, 8);
    XXH3_128bits_update(c->st, name, name_len);
    sl_le_store_u32(buf, type);
    sl_le_store_u32(buf + 4, n_dims);
    XXH3_128bits_update(c->st, buf, 8);
    for (uint32_t i = 0; i < n_dims; i++) {
        sl_le_store_u64(buf, ne[i]);
        XXH3_128bits_update(c->st, buf, 8);
    }
}

static _Thread_local uint64_t pace_bps; /* this thread's hashing rate; 0: as fast as it goes */

void sl_checksum_pace(uint64_t bytes_per_second) { pace_bps = bytes_per_second; }

void sl_checksum_update(sl_checksum *c, const void *data, size_t len)
{
    if (!pace_bps) {
        XXH3_128bits_update(c->st, data, len);
        return;
    }
    const size_t chunk = 1u << 20;
    const uint64_t ns = (uint64_t)chunk * 1000000000ull / pace_bps;
    for (size_t off = 0; off < len; off += chunk) {
        XXH3_128bits_update(c->st, (const uint8_t *)data + off, len - off < chunk ? len - off : chunk);
        nanosleep(&(struct timespec){.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)},
                  NULL);
    }
}

static void format(XXH128_hash_t h, char *out)
{
    snprintf(out, SL_CHECKSUM_STRLEN + 1, "%s%016llx%016llx", SL_CHECKSUM_PREFIX,
             (unsigned long long)h.high64, (unsigned long long)h.low64);
}

void sl_checksum_final(sl_checksum *c, char *out)
{
    format(XXH3_128bits_digest(c->st), out);
}

void sl_checksum_bytes(const void *data, size_t len, char *out)
{
    format(XXH3_128bits(data, len), out);
}
