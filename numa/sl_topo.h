/* sl_topo.h - the machine's shape (packages, NUMA nodes, cores, caches)
 * read through hwloc, so core plans and NUMA-local pools can be made from
 * facts, not guesses.  A synthetic hwloc description gives multi-node
 * shapes for tests on a single-node box. */
#ifndef SL_TOPO_H
#define SL_TOPO_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_error.h"

typedef struct sl_topo_node {
    int os_index;       /* NUMA node number as the kernel knows it */
    int n_cores;
    int *core_pu;       /* per core: OS index of its first processing unit */
    uint64_t mem_bytes; /* local memory (0 if hwloc does not know) */
} sl_topo_node;

typedef struct sl_topo {
    int n_packages, n_nodes, n_cores, n_pus;
    uint64_t l2_bytes, l3_bytes; /* size of one L2 / L3 (0 if unknown) */
    bool is_this_system;         /* false for synthetic shapes: binding is a no-op */
    sl_topo_node *nodes;
} sl_topo;

/* synthetic: NULL for this machine, else an hwloc synthetic description
 * such as "package:2 [numa] core:4 pu:1". */
sl_status sl_topo_probe(sl_topo *t, const char *synthetic, sl_err *err);
void sl_topo_free(sl_topo *t);

#endif
