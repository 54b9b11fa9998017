/* Topology: this machine, and synthetic multi-node shapes (the plan is
 * what can be tested there, since binding is a no-op). */
#include <criterion/criterion.h>

#include "sl_topo.h"

Test(topo, this_machine_has_cores_and_a_node)
{
    sl_topo t;
    sl_err err;
    cr_assert_eq(sl_topo_probe(&t, NULL, &err), SL_OK, "%s", err.msg);
    cr_assert(t.is_this_system);
    cr_assert_geq(t.n_cores, 1);
    cr_assert_geq(t.n_pus, t.n_cores);
    cr_assert_geq(t.n_nodes, 1);
    int cores = 0;
    for (int i = 0; i < t.n_nodes; i++)
        cores += t.nodes[i].n_cores;
    cr_assert_eq(cores, t.n_cores, "every core belongs to exactly one node");
    sl_topo_free(&t);
}

Test(topo, synthetic_two_socket_shape)
{
    sl_topo t;
    sl_err err;
    cr_assert_eq(sl_topo_probe(&t, "package:2 [numa(memory=4GB)] l3:1(size=32MB) core:4 pu:2", &err), SL_OK, "%s", err.msg);
    cr_assert_not(t.is_this_system);
    cr_assert_eq(t.n_packages, 2);
    cr_assert_eq(t.n_nodes, 2);
    cr_assert_eq(t.n_cores, 8);
    cr_assert_eq(t.n_pus, 16);
    cr_assert_eq(t.l3_bytes, 32000000, "hwloc reads MB and GB as powers of ten");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(t.nodes[i].n_cores, 4);
        cr_assert_eq(t.nodes[i].mem_bytes, 4000000000ull);
    }
    cr_assert_eq(t.nodes[0].core_pu[0], 0);
    cr_assert_eq(t.nodes[1].core_pu[0], 8, "first PU of the first core on node 1");
    sl_topo_free(&t);
    cr_assert_eq(sl_topo_probe(&t, "bogus:7", &err), SL_EINVAL);
}
