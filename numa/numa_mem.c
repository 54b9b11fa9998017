/* numa_mem.c - NUMA-local buffers (sl_numa_mem.h). */
#include <numa.h>
#include <stdlib.h>
#include <string.h>

#include "sl_numa_mem.h"

sl_status sl_buf_alloc(sl_buf *b, size_t bytes, int node, sl_err *err)
{
    memset(b, 0, sizeof *b);
    if (bytes == 0)
        bytes = 64;
    if (node >= 0 && numa_available() >= 0 && node <= numa_max_node()) {
        b->p = numa_alloc_onnode(bytes, node); /* mmap'd: zero-filled, page aligned */
        b->numa = b->p != NULL;
    }
    if (!b->p) {
        size_t rounded = (bytes + 63) & ~(size_t)63;
        if (rounded < bytes || !(b->p = aligned_alloc(64, rounded)))
            return sl_err_set(err, SL_ENOMEM, "cannot allocate %zu bytes", bytes);
        memset(b->p, 0, rounded);
    }
    b->bytes = bytes;
    return SL_OK;
}

void sl_buf_free(sl_buf *b)
{
    if (!b->p)
        return;
    if (b->numa)
        numa_free(b->p, b->bytes);
    else
        free(b->p);
    memset(b, 0, sizeof *b);
}
