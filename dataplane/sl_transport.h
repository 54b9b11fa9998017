/* sl_transport.h - what a transport (kernel UDP, kernel TCP; DPDK next)
 * gives the serving core: whole wire messages in, each with the peer it
 * came from, and a way to send a message back to a peer.
 *
 * A peer is a value, not a pointer: the serving core keeps it in its
 * tables and compares it byte for byte, so every transport fills the
 * unused bytes of one with zeros. */
#ifndef SL_TRANSPORT_H
#define SL_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct sl_peer {
    uint16_t transport; /* the index the daemon gave the transport */
    uint16_t alen;      /* datagrams: bytes of addr in use */
    uint32_t conn;      /* streams: the connection's slot */
    uint64_t serial;    /* streams: the connection's serial (a reused slot is another peer) */
    uint8_t addr[28];   /* datagrams: the source address (a struct sockaddr_in6) */
    uint8_t pad[4];
} sl_peer;

static inline int sl_peer_equal(const sl_peer *a, const sl_peer *b) { return memcmp(a, b, sizeof *a) == 0; }

typedef struct sl_transport sl_transport;
struct sl_transport {
    const char *name;   /* "udp", "tcp": for logs */
    uint16_t index;     /* peers of this transport carry it */
    int datagram;       /* replies may be lost: kept to resend; sources prove their address */
    size_t max_request; /* bytes of one request message, header included */
    int max_reply_ids;  /* token ids in one TOKENS reply */
    size_t max_reply_text; /* bytes of text in one TOKENS reply */
    /* Sends (or queues) one message; a peer that is gone drops it. */
    void (*send)(sl_transport *t, const sl_peer *to, const uint8_t *msg, size_t n);
};

/* What a transport calls as messages come in. */
typedef struct sl_rx {
    void *ctx;
    /* One whole message (a datagram, or a frame cut from a stream). */
    void (*msg)(void *ctx, sl_transport *t, const sl_peer *from, const uint8_t *b, size_t n);
    /* A stream's framing is lost (why says how): the transport closes it
     * after this returns, so a reply sent now is the last it gets. */
    void (*lost)(void *ctx, sl_transport *t, const sl_peer *from, const char *why);
    /* A stream closed: by its peer or an error (why NULL), or by the
     * transport (why says what, e.g. too far behind). */
    void (*gone)(void *ctx, const sl_peer *p, const char *why);
} sl_rx;

#endif
