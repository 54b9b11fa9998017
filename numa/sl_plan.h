/* sl_plan.h - which cores run inference workers and which are kept for the
 * data plane, decided from the topology (sl_topo.h). */
#ifndef SL_PLAN_H
#define SL_PLAN_H

#include "sl_topo.h"

#define SL_PLAN_MAX_CPUS 1024

typedef struct sl_core_plan {
    int node;              /* NUMA node (OS index) the workers and their memory live on */
    int n_workers;
    int worker_cpu[SL_PLAN_MAX_CPUS]; /* OS index of the first PU of each worker core */
    int n_dp;
    int dp_cpu[SL_PLAN_MAX_CPUS];     /* data-plane cores: the node's last cores */
} sl_core_plan;

/* node: OS index of the NUMA node, or -1 for the node with the most cores
 * (the first such).  dp_cores are taken from the end of the node's core
 * list, so workers start at its first core; max_workers 0 means all the
 * rest.  SL_ERANGE if the node is unknown or nothing is left for workers. */
sl_status sl_core_plan_make(const sl_topo *t, int node, int dp_cores, int max_workers, sl_core_plan *p, sl_err *err);

#endif
