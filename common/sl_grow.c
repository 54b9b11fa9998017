/* sl_grow.c - growing a heap buffer by doubling (sl_grow.h). */
#include <stdint.h>
#include <stdlib.h>

#include "sl_grow.h"

int sl_grow(void **p, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : first ? first : 1;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return -1;
        c *= 2;
    }
    void *q = realloc(*p, c);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}
