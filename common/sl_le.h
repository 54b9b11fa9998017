/* sl_le.h - little-endian loads and stores of u16/u32/u64/f32 at any byte
 * address: the one byte-order helper of the wire codec, the GGUF reader and
 * writer and every other file format sluice reads or writes.
 *
 * Each goes through memcpy (no unaligned or type-punned access, which the
 * compilers turn into one move) and a byte swap only on a big-endian host,
 * so the formats stay little-endian whatever the machine. */
#ifndef SL_LE_H
#define SL_LE_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define SL_LE_SWAP16(x) __builtin_bswap16(x)
#define SL_LE_SWAP32(x) __builtin_bswap32(x)
#define SL_LE_SWAP64(x) __builtin_bswap64(x)
#else
#define SL_LE_SWAP16(x) (x)
#define SL_LE_SWAP32(x) (x)
#define SL_LE_SWAP64(x) (x)
#endif

static inline uint16_t sl_le_load_u16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return SL_LE_SWAP16(v);
}

static inline uint32_t sl_le_load_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return SL_LE_SWAP32(v);
}

static inline uint64_t sl_le_load_u64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return SL_LE_SWAP64(v);
}

/* An IEEE-754 binary32 stored as its little-endian bits. */
static inline float sl_le_load_f32(const void *p)
{
    const uint32_t b = sl_le_load_u32(p);
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static inline void sl_le_store_u16(void *p, uint16_t v)
{
    v = SL_LE_SWAP16(v);
    memcpy(p, &v, sizeof v);
}

static inline void sl_le_store_u32(void *p, uint32_t v)
{
    v = SL_LE_SWAP32(v);
    memcpy(p, &v, sizeof v);
}

static inline void sl_le_store_u64(void *p, uint64_t v)
{
    v = SL_LE_SWAP64(v);
    memcpy(p, &v, sizeof v);
}

static inline void sl_le_store_f32(void *p, float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    sl_le_store_u32(p, b);
}

#endif
