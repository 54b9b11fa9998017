/* numa_mem.c - NUMA-local buffers (sl_numa_mem.h). */
#include <numa.h>
#include <numaif.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "sl_numa_mem.h"

/* Every buffer starts on a 2 MiB boundary, spans whole 2 MiB units and is
 * advised for transparent huge pages.
 * - The KV pool is read a 4 KiB run per (sequence, layer, head) and block:
 *   with 4 KiB pages every run costs a TLB miss.
 * - On huge pages a buffer's physical offset is its virtual one, so every
 *   engine's buffers fall on the L2's (physically indexed) sets alike.  On
 *   4 KiB pages two engines doing identical work in one process could
 *   differ by up to 5%.
 * Advice only: a kernel without THP leaves the pages as they are. */
#define BUF_ALIGN ((size_t)2 << 20)

sl_status sl_buf_alloc(sl_buf *b, size_t bytes, int node, sl_err *err)
{
    memset(b, 0, sizeof *b);
    if (bytes > SIZE_MAX - 2 * BUF_ALIGN)
        return sl_err_set(err, SL_ENOMEM, "cannot map %zu bytes", bytes);
    const size_t len = bytes ? (bytes + BUF_ALIGN - 1) & ~(BUF_ALIGN - 1) : BUF_ALIGN;
    /* anonymous pages: zero-filled by the kernel and only resident once
     * touched, so a KV pool costs what its sequences use */
    char *raw = mmap(NULL, len + BUF_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return sl_err_errno(err, SL_ENOMEM, "cannot map %zu bytes", len + BUF_ALIGN);
    char *p = (char *)(((uintptr_t)raw + BUF_ALIGN - 1) & ~(uintptr_t)(BUF_ALIGN - 1));
    /* the unaligned head and the tail past len go back to the kernel */
    if (p > raw)
        (void)munmap(raw, (size_t)(p - raw));
    if (raw + len + BUF_ALIGN > p + len)
        (void)munmap(p + len, (size_t)(raw + len + BUF_ALIGN - (p + len)));
    (void)madvise(p, len, MADV_HUGEPAGE);
    /* on the node, as numa_alloc_onnode would bind it; where the kernel
     * refuses, the buffer stays unbound (best effort, as pinning is) */
    if (node >= 0 && node < 64 && numa_available() >= 0 && node <= numa_max_node()) {
        const unsigned long mask = 1ul << node;
        b->numa = mbind(p, len, MPOL_BIND, &mask, (unsigned long)node + 2, 0) == 0;
    }
    b->p = p;
    b->bytes = len;
    return SL_OK;
}

void sl_buf_free(sl_buf *b)
{
    if (!b->p)
        return;
    (void)munmap(b->p, b->bytes);
    memset(b, 0, sizeof *b);
}
