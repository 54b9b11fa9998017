/* numa_mem.c - NUMA-local buffers (sl_numa_mem.h). */
#include <numa.h>
#include <string.h>
#include <sys/mman.h>

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
        /* anonymous pages: zero-filled by the kernel and only resident once
         * touched, so a KV pool costs what its sequences use */
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return sl_err_errno(err, SL_ENOMEM, "cannot map %zu bytes", bytes);
        b->p = p;
    }
    /* Transparent huge pages where the kernel offers them on request: the
     * KV pool is read a 4 KiB run per (sequence, layer, head) and block, so
     * with 4 KiB pages every run costs a TLB miss.  Advice only: a kernel
     * without THP leaves the pages as they are. */
    if (bytes >= (2u << 20))
        (void)madvise(b->p, bytes, MADV_HUGEPAGE);
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
        munmap(b->p, b->bytes);
    memset(b, 0, sizeof *b);
}
