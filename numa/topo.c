#include "sl_topo.h"

#include <hwloc.h>
#include <stdlib.h>
#include <string.h>

static uint64_t cache_size(hwloc_topology_t topo, hwloc_obj_type_t type)
{
    hwloc_obj_t o = hwloc_get_obj_by_type(topo, type, 0);
    return o && o->attr ? o->attr->cache.size : 0;
}

sl_status sl_topo_probe(sl_topo *t, const char *synthetic, sl_err *err)
{
    memset(t, 0, sizeof *t);
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0)
        return sl_err_errno(err, SL_EIO, "hwloc_topology_init failed");
    if (synthetic && hwloc_topology_set_synthetic(topo, synthetic) != 0) {
        hwloc_topology_destroy(topo);
        return sl_err_set(err, SL_EINVAL, "bad synthetic topology '%s'", synthetic);
    }
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return sl_err_errno(err, SL_EIO, "hwloc_topology_load failed");
    }
    t->is_this_system = hwloc_topology_is_thissystem(topo) != 0;
    t->n_packages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
    t->n_cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    t->n_pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    t->l2_bytes = cache_size(topo, HWLOC_OBJ_L2CACHE);
    t->l3_bytes = cache_size(topo, HWLOC_OBJ_L3CACHE);
    int nn = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    if (nn < 1)
        nn = 1;
    t->nodes = calloc((size_t)nn, sizeof *t->nodes);
    if (!t->nodes) {
        hwloc_topology_destroy(topo);
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    t->n_nodes = nn;
    for (int i = 0; i < nn; i++) {
        sl_topo_node *n = &t->nodes[i];
        hwloc_obj_t node = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)i);
        n->os_index = node ? (int)node->os_index : 0;
        n->mem_bytes = node ? node->attr->numanode.local_memory : 0;
        n->core_pu = calloc((size_t)(t->n_cores ? t->n_cores : 1), sizeof *n->core_pu);
        if (!n->core_pu) {
            hwloc_topology_destroy(topo);
            sl_topo_free(t);
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        }
        for (int c = 0; c < t->n_cores; c++) {
            hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, (unsigned)c);
            if (node && !hwloc_bitmap_intersects(core->nodeset, node->nodeset))
                continue;
            hwloc_obj_t pu = hwloc_get_obj_inside_cpuset_by_type(topo, core->cpuset, HWLOC_OBJ_PU, 0);
            n->core_pu[n->n_cores++] = pu ? (int)pu->os_index : -1;
        }
    }
    hwloc_topology_destroy(topo);
    return SL_OK;
}

void sl_topo_free(sl_topo *t)
{
    if (t->nodes)
        for (int i = 0; i < t->n_nodes; i++)
            free(t->nodes[i].core_pu);
    free(t->nodes);
    memset(t, 0, sizeof *t);
}
