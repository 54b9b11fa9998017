/* sl_synth.h - random-weight Llama images of real shapes (sluice synth). */
#ifndef SL_SYNTH_H
#define SL_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_model_src.h"

typedef struct sl_synth_shape {
    const char *name;
    uint32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, ctx;
    float rope_theta;
    bool tied;
} sl_synth_shape;

const sl_synth_shape *sl_synth_find(const char *name);
const char *sl_synth_names(void);
/* Describes a seeded random model of shape s; write it with sl_model_write. */
sl_status sl_synth_model(const sl_synth_shape *s, uint64_t seed, sl_model_src *m, sl_err *err);

#endif
