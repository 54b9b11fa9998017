/* sl_numa_mem.h - buffers on a chosen NUMA node (libnuma), falling back to
 * ordinary aligned memory where the kernel has no NUMA support. */
#ifndef SL_NUMA_MEM_H
#define SL_NUMA_MEM_H

#include <stdbool.h>
#include <stddef.h>

#include "sl_error.h"

typedef struct sl_buf {
    void *p;
    size_t bytes;
    bool numa; /* came from libnuma (freed with numa_free), else from mmap */
} sl_buf;

/* Zeroed and page aligned; pages become resident as they are touched.
 * node < 0 means no preference. */
sl_status sl_buf_alloc(sl_buf *b, size_t bytes, int node, sl_err *err);
void sl_buf_free(sl_buf *b);

#endif
