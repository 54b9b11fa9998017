/* sl_calib.h - calibration statistics for the quantization methods.
 *
 * The engine runs the calibration sequences through the base model, and a
 * tap (sl_engine_set_tap) folds the input of every matrix product into
 * per-(layer, input) statistics as it goes:
 *   - H = X^T X, the input Gram matrix (GPTQ's Hessian, up to a factor);
 *   - the mean |x| of every input channel (AWQ's activation salience) and
 *     its largest |x| (SmoothQuant's migration, W8A8's static scales);
 *   - the first `max_sample` input rows (AWQ's error search).
 * Memory is bounded by the layers' widths (k x k floats per input, for
 * the layers asked for), never by the calibration's length. */
#ifndef SL_CALIB_H
#define SL_CALIB_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_engine.h"
#include "sl_eval.h"

typedef struct sl_calib_slot {
    int k;            /* input width; 0 when the slot saw nothing */
    float *H;         /* k x k, both triangles filled by sl_calib_run */
    double *abs_sum;  /* k: sum of |x| per channel */
    float *abs_max;   /* k: largest |x| per channel */
    uint64_t n;       /* input rows seen */
    float *sample;    /* n_sample x k */
    int n_sample;
} sl_calib_slot;

typedef struct sl_calib {
    int n_layers;   /* the model's; index n_layers is the classifier */
    int l0, l1;     /* layers [l0, l1] were collected */
    int max_sample;
    bool gram;      /* H and abs_sum were collected (else only samples) */
    sl_calib_slot *slots; /* [(n_layers + 1) * SL_TAP_COUNT] */
    int oom;
} sl_calib;

/* Runs the sequences through e and collects layers l0..l1 (l1 may be
 * n_layers: the classifier's input).  Without gram only the samples are
 * kept (H, abs_sum and abs_max stay NULL): the quality gate's inputs. */
sl_status sl_calib_run(sl_engine *e, const sl_eval_seq *seqs, int n_seqs, int l0, int l1, int max_sample, bool gram,
                       sl_calib **out, sl_err *err);
void sl_calib_free(sl_calib *c);
/* The statistics of one (layer, input), or NULL if not collected. */
const sl_calib_slot *sl_calib_slot_for(const sl_calib *c, int layer, sl_tap_point at);
/* The linear layers of a block, in the order sluice lists them, and the
 * input each one reads. */
typedef struct sl_linear_role {
    const char *name; /* "attn_q": blk.N.attn_q.weight */
    sl_tap_point at;
} sl_linear_role;
#define SL_LINEAR_ROLES 7
extern const sl_linear_role sl_linear_roles[SL_LINEAR_ROLES];

/* Bytes the statistics of layers l0..l1 would take (H, sums, sample). */
uint64_t sl_calib_bytes(const sl_model *m, int l0, int l1, int max_sample);

#endif
