/* sl_numa_mem.h - buffers on a chosen NUMA node (libnuma), falling back to
 * ordinary aligned memory where the kernel has no NUMA support. */
#ifndef SL_NUMA_MEM_H
#define SL_NUMA_MEM_H

#include <stdbool.h>
#include <stddef.h>

#include "sl_error.h"

typedef struct sl_buf {
    void *p;
    size_t bytes; /* whole 2 MiB units */
    bool numa;    /* bound to its node */
} sl_buf;

/* Zeroed, 2 MiB aligned and rounded up to 2 MiB units (advised for huge
 * pages); pages become resident as they are touched.  node < 0 means no
 * preference. */
sl_status sl_buf_alloc(sl_buf *b, size_t bytes, int node, sl_err *err);
void sl_buf_free(sl_buf *b);

#endif
