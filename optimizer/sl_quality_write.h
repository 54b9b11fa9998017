/* sl_quality_write.h - putting a verdict (sl_quality.h) into an image. */
#ifndef SL_QUALITY_WRITE_H
#define SL_QUALITY_WRITE_H

#include "sl_quality.h"

/* Rewrites the image at path with q's sluice.quality.* keys, replacing any
 * earlier verdict.  Tensors are copied as they are, so the content checksum
 * is unchanged; the image must be the one q names (SL_ECHECKSUM if not).
 * The write is atomic: on failure the old image stays. */
sl_status sl_quality_write(const char *path, const sl_quality *q, sl_err *err);

#endif
