/* sl_grow.h - growing a heap buffer by doubling. */
#ifndef SL_GROW_H
#define SL_GROW_H

#include <stddef.h>

/* Makes *p hold at least `need` bytes: when *cap is short, the capacity
 * doubles from `first` (or from *cap) until it is enough and *p is
 * reallocated.  Returns 0, or -1 (with *p and *cap as they were) when
 * out of memory or when the size would overflow. */
int sl_grow(void **p, size_t *cap, size_t need, size_t first);

#endif
