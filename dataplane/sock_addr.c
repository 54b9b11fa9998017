/* sock_addr.c - socket addresses as the daemon's flags write them (sl_sock.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_sock.h"

int sl_sock_parse_addr(const char *s, struct sockaddr_in6 *a)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    if (!colon || colon - s >= (long)sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    char *end;
    const long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -1;
    memset(a, 0, sizeof *a);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &a->sin6_addr) == 1)
        return 0;
    struct in_addr v4;
    if (inet_pton(AF_INET, host, &v4) != 1)
        return -1;
    a->sin6_addr.s6_addr[10] = a->sin6_addr.s6_addr[11] = 0xff; /* ::ffff:a.b.c.d */
    memcpy(&a->sin6_addr.s6_addr[12], &v4, 4);
    return 0;
}

void sl_sock_format_addr(const struct sockaddr_in6 *a, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    snprintf(out, cap, "%s:%u", strncmp(host, "::ffff:", 7) ? host : host + 7, ntohs(a->sin6_port));
}
