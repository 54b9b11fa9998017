/* DPDK bring-up on a virtual device: the EAL without hugepages or PCI, a
 * net_ring port (its TX ring is its RX ring), and a UDP frame that goes out
 * and comes back byte for byte. */
#include <criterion/criterion.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "sl_dp_port.h"

Test(dp_port, ring_port_loops_a_frame_back_unchanged)
{
    const char *extra[] = {"--vdev=net_ring0"};
    sl_err err;
    cr_assert_eq(sl_dp_eal_init(1, 1, extra, &err), SL_OK, "%s", err.msg);
    struct rte_mempool *mp = rte_pktmbuf_pool_create("sl_test_pool", 1023, 32, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    cr_assert_not_null(mp, "mempool");
    uint16_t port;
    cr_assert_eq(sl_dp_port_open("net_ring0", 256, mp, &port, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(sl_dp_port_open("net_nothing9", 256, mp, &port, &err), SL_ENOTFOUND);

    /* Ethernet + IPv4 + UDP to 10.99.0.1:9000, payload "sluice". */
    static const uint8_t frame[] = {
        0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00,             /* ethernet */
        0x45, 0, 0, 34, 0, 1, 0, 0, 64, 17, 0, 0, 10, 99, 0, 2, 10, 99, 0, 1, /* ipv4 */
        0x9c, 0x40, 0x23, 0x28, 0, 14, 0, 0,                              /* udp */
        's', 'l', 'u', 'i', 'c', 'e'};
    struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
    cr_assert_not_null(m);
    uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, sizeof frame);
    cr_assert_not_null(p);
    memcpy(p, frame, sizeof frame);
    cr_assert_eq(rte_eth_tx_burst(port, 0, &m, 1), 1);
    struct rte_mbuf *rx[4];
    uint16_t n = rte_eth_rx_burst(port, 0, rx, 4);
    cr_assert_eq(n, 1, "one frame back, got %u", n);
    cr_assert_eq(rte_pktmbuf_pkt_len(rx[0]), sizeof frame);
    cr_assert_arr_eq(rte_pktmbuf_mtod(rx[0], uint8_t *), frame, sizeof frame);
    rte_pktmbuf_free(rx[0]);
    cr_assert_eq(rte_eth_rx_burst(port, 0, rx, 4), 0, "nothing else arrives");
    sl_dp_port_close(port);
    rte_eal_cleanup();
}
