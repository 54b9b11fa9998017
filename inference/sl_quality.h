/* sl_quality.h - the quality verdict an image carries (`sluice validate`).
 *
 * The verdict lives in the image's sluice.quality.* keys, outside the
 * content checksum (which covers tensors only), and names the content
 * checksums of the candidate it was measured on and of the base it was
 * measured against.  A verdict is only believed when its candidate
 * checksum is the image's own: one copied into another image is refused. */
#ifndef SL_QUALITY_H
#define SL_QUALITY_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_checksum.h"
#include "sl_error.h"
#include "sl_gguf.h"

#define SL_QUALITY_PREFIX "sluice.quality."

typedef struct sl_quality {
    bool present;                    /* the image carries a verdict */
    bool pass;
    char candidate[SL_CHECKSUM_STRLEN + 1]; /* content checksums, "xxh3-128:..." */
    char base[SL_CHECKSUM_STRLEN + 1];
    char base_name[256];             /* the base image as given to validate */
    char data[512];                  /* the evaluation data and protocol */
    char limits[256];                /* the limits the verdict was judged by */
    char worst[512];                 /* the worst linear layers, "name error, ..." */
    char time[32];                   /* UTC, ISO 8601 */
    uint64_t tokens;                 /* scored positions */
    double ppl, base_ppl, ppl_ratio, kl_mean, kl_p99, top1;
} sl_quality;

/* Reads the verdict of g into q.  content_checksum is the image's content
 * checksum as computed (sl_gguf_compute_checksum), never the stored key.
 * No verdict: SL_OK with q->present false.  A verdict bound to another
 * image: SL_ECHECKSUM.  A malformed one: SL_EFORMAT. */
sl_status sl_quality_read(const sl_gguf *g, const char *content_checksum, sl_quality *q, sl_err *err);

#endif
