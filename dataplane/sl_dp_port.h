/* sl_dp_port.h - DPDK bring-up: the EAL with defaults that work without a
 * NIC or hugepages, and one Ethernet port with one RX and one TX queue.
 * Start-up failures are loud and final; nothing here runs in the hot loop. */
#ifndef SL_DP_PORT_H
#define SL_DP_PORT_H

#include <stdint.h>

#include "sl_error.h"

struct rte_mempool;

/* Initialises the EAL once per process with `--no-huge -m 256 --no-pci
 * --no-shconf --no-telemetry -l 0` followed by extra (for example
 * "--vdev=net_ring0").  Hugepage-backed setups pass their own full list with
 * defaults = 0. */
sl_status sl_dp_eal_init(int defaults, int n_extra, const char *const *extra, sl_err *err);

/* Finds the port named devname ("net_ring0", "net_af_packet0", ...),
 * configures one RX and one TX queue of nb_desc descriptors with RX buffers
 * from mp, and starts it. */
sl_status sl_dp_port_open(const char *devname, uint16_t nb_desc, struct rte_mempool *mp, uint16_t *port,
                          sl_err *err);
void sl_dp_port_close(uint16_t port);

#endif
