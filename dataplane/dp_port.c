#include "sl_dp_port.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>
#include <stdio.h>
#include <string.h>

sl_status sl_dp_eal_init(int defaults, int n_extra, const char *const *extra, sl_err *err)
{
    static const char *const base[] = {"sluice", "--no-huge", "-m", "256", "--no-pci", "--no-shconf",
                                       "--no-telemetry", "-l", "0", "--log-level=lib.eal:error"};
    enum { NBASE = sizeof base / sizeof base[0], MAX_ARGS = 64 };
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    if (n_extra < 0 || n_extra > MAX_ARGS - NBASE)
        return sl_err_set(err, SL_EINVAL, "too many EAL arguments (%d)", n_extra);
    argv[argc++] = (char *)base[0];
    for (int i = 1; defaults && i < NBASE; i++)
        argv[argc++] = (char *)base[i];
    for (int i = 0; i < n_extra; i++)
        argv[argc++] = (char *)extra[i];
    argv[argc] = NULL;
    if (rte_eal_init(argc, argv) < 0)
        return sl_err_set(err, SL_EIO, "DPDK EAL initialisation failed: %s", rte_strerror(rte_errno));
    return SL_OK;
}

sl_status sl_dp_port_open(const char *devname, uint16_t nb_desc, struct rte_mempool *mp, uint16_t *port,
                          sl_err *err)
{
    uint16_t p;
    if (rte_eth_dev_get_port_by_name(devname, &p) != 0)
        return sl_err_set(err, SL_ENOTFOUND, "no DPDK port named '%s' (was it given as --vdev?)", devname);
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof conf);
    int rc = rte_eth_dev_configure(p, 1, 1, &conf);
    if (rc == 0)
        rc = rte_eth_rx_queue_setup(p, 0, nb_desc, (unsigned)rte_eth_dev_socket_id(p), NULL, mp);
    if (rc == 0)
        rc = rte_eth_tx_queue_setup(p, 0, nb_desc, (unsigned)rte_eth_dev_socket_id(p), NULL);
    if (rc == 0)
        rc = rte_eth_dev_start(p);
    if (rc != 0)
        return sl_err_set(err, SL_EIO, "cannot set up port '%s': %s", devname, rte_strerror(-rc));
    *port = p;
    return SL_OK;
}

void sl_dp_port_close(uint16_t port)
{
    rte_eth_dev_stop(port);
    rte_eth_dev_close(port);
}
