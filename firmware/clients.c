/* clients.c - the per-client table (sl_clients.h). */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "sl_clients.h"

sl_status sl_clients_init(sl_clients *t, int cap, sl_err *err)
{
    memset(t, 0, sizeof *t);
    int nb = 1;
    while (nb < 2 * cap)
        nb <<= 1;
    t->c = calloc((size_t)cap, sizeof *t->c);
    t->heads = malloc(sizeof *t->heads * (size_t)nb);
    if (!t->c || !t->heads) {
        sl_clients_free(t);
        return sl_err_set(err, SL_ENOMEM, "out of memory for %d clients", cap);
    }
    t->cap = cap, t->mask = nb - 1;
    for (int i = 0; i < nb; i++)
        t->heads[i] = -1;
    for (int i = 0; i < cap; i++)
        t->c[i].next = i + 1 < cap ? i + 1 : -1;
    t->free_head = 0;
    t->newest = t->oldest = -1;
    return SL_OK;
}

void sl_clients_free(sl_clients *t)
{
    free(t->c);
    free(t->heads);
    memset(t, 0, sizeof *t);
}

static int bucket_of(const sl_clients *t, const sl_peer *p) { return (int)(XXH3_64bits(p, sizeof *p) & (uint64_t)t->mask); }

static void unlink_recency(sl_clients *t, int i)
{
    sl_client *c = &t->c[i];
    if (c->newer >= 0)
        t->c[c->newer].older = c->older;
    else
        t->newest = c->older;
    if (c->older >= 0)
        t->c[c->older].newer = c->newer;
    else
        t->oldest = c->newer;
}

static void link_newest(sl_clients *t, int i)
{
    sl_client *c = &t->c[i];
    c->newer = -1;
    c->older = t->newest;
    if (t->newest >= 0)
        t->c[t->newest].newer = i;
    t->newest = i;
    if (t->oldest < 0)
        t->oldest = i;
}

sl_client *sl_clients_find(sl_clients *t, const sl_peer *p)
{
    for (int i = t->heads[bucket_of(t, p)]; i >= 0; i = t->c[i].next)
        if (sl_peer_equal(&t->c[i].peer, p))
            return &t->c[i];
    return NULL;
}

void sl_clients_drop(sl_clients *t, sl_client *c)
{
    const int i = (int)(c - t->c);
    int *link = &t->heads[bucket_of(t, &c->peer)];
    while (*link != i)
        link = &t->c[*link].next;
    *link = c->next;
    unlink_recency(t, i);
    memset(c, 0, sizeof *c);
    c->next = t->free_head;
    t->free_head = i;
}

sl_client *sl_clients_get(sl_clients *t, const sl_peer *p, uint64_t now_us)
{
    sl_client *c = sl_clients_find(t, p);
    if (c)
        return c;
    if (t->free_head < 0) { /* full: the least recently heard without work makes room */
        int v = t->oldest;
        while (v >= 0 && (t->c[v].inflight || t->c[v].pinned))
            v = t->c[v].newer;
        if (v < 0)
            return NULL;
        sl_clients_drop(t, &t->c[v]);
    }
    const int i = t->free_head;
    c = &t->c[i];
    t->free_head = c->next;
    memset(c, 0, sizeof *c);
    c->used = 1;
    c->peer = *p;
    c->seen_us = now_us;
    const int b = bucket_of(t, p);
    c->next = t->heads[b];
    t->heads[b] = i;
    link_newest(t, i);
    return c;
}

void sl_clients_heard(sl_clients *t, sl_client *c, uint64_t now_us)
{
    const int i = (int)(c - t->c);
    c->seen_us = now_us;
    if (t->newest != i) {
        unlink_recency(t, i);
        link_newest(t, i);
    }
}
