/* plan.c - core plans (sl_plan.h). */
#include <string.h>

#include "sl_plan.h"

sl_status sl_core_plan_make(const sl_topo *t, int node, int dp_cores, int max_workers, sl_core_plan *p, sl_err *err)
{
    memset(p, 0, sizeof *p);
    if (dp_cores < 0 || max_workers < 0)
        return sl_err_set(err, SL_EINVAL, "negative core count in the plan request");
    const sl_topo_node *n = NULL;
    for (int i = 0; i < t->n_nodes; i++) {
        const sl_topo_node *c = &t->nodes[i];
        if (node >= 0 ? c->os_index == node : (!n || c->n_cores > n->n_cores))
            n = c;
        if (node >= 0 && n)
            break;
    }
    if (!n)
        return sl_err_set(err, SL_ERANGE, "NUMA node %d does not exist (this machine has %d node%s)", node,
                          t->n_nodes, t->n_nodes == 1 ? "" : "s");
    int usable = 0;
    int cpus[SL_PLAN_MAX_CPUS];
    for (int c = 0; c < n->n_cores && usable < SL_PLAN_MAX_CPUS; c++)
        if (n->core_pu[c] >= 0)
            cpus[usable++] = n->core_pu[c];
    if (dp_cores >= usable)
        return sl_err_set(err, SL_ERANGE,
                          "node %d has %d core%s; keeping %d for the data plane leaves none for inference workers",
                          n->os_index, usable, usable == 1 ? "" : "s", dp_cores);
    p->node = n->os_index;
    p->n_dp = dp_cores;
    memcpy(p->dp_cpu, cpus + usable - dp_cores, sizeof(int) * (size_t)dp_cores);
    p->n_workers = usable - dp_cores;
    if (max_workers && p->n_workers > max_workers)
        p->n_workers = max_workers;
    memcpy(p->worker_cpu, cpus, sizeof(int) * (size_t)p->n_workers);
    return SL_OK;
}
