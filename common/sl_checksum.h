/* sl_checksum.h - the content checksum of a model image.
 *
 * XXH3-128 over, for each tensor in the order of the image's tensor table:
 * name length (u64 LE), name bytes, type (u32 LE), n_dims (u32 LE), each
 * dimension (u64 LE), then the tensor's data bytes.  Metadata is left out on
 * purpose: quality verdicts and notes are rewritten into an image without
 * changing what it computes, and they bind themselves to this value. */
#ifndef SL_CHECKSUM_H
#define SL_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#define SL_CHECKSUM_PREFIX "xxh3-128:"
#define SL_CHECKSUM_STRLEN (sizeof(SL_CHECKSUM_PREFIX) - 1 + 32) /* without NUL */

typedef struct sl_checksum sl_checksum;

sl_checksum *sl_checksum_new(void);
void sl_checksum_free(sl_checksum *c);
void sl_checksum_tensor_header(sl_checksum *c, const char *name, size_t name_len, uint32_t type,
                               uint32_t n_dims, const uint64_t *ne);
void sl_checksum_update(sl_checksum *c, const void *data, size_t len);
/* From now on this thread hashes at most about bytes_per_second (0: no
 * limit): a background verification then leaves the memory bandwidth to
 * the forward passes beside it. */
void sl_checksum_pace(uint64_t bytes_per_second);
/* Writes "xxh3-128:<32 hex digits>" and a NUL into out (SL_CHECKSUM_STRLEN+1 bytes). */
void sl_checksum_final(sl_checksum *c, char *out);

/* Checksum of a whole byte range in the same textual form (for source files). */
void sl_checksum_bytes(const void *data, size_t len, char *out);

#endif
