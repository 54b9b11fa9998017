/* sl_blas.h - OpenBLAS and LAPACKE, loaded on first use.
 *
 * OpenBLAS starts its thread pool when it is loaded, and its idle threads
 * spin (sched_yield) for about 0.1 s before they sleep, on the very cores
 * the engine's threads are pinned to: linked into `sluice`, it would share
 * those cores during every short `sluice bench` (and make 2 engine threads
 * look slower than 1).  Only the optimizer's methods need BLAS (GPTQ's
 * factorizations and products, calibration's Gram matrices, AWQ's search),
 * so they load it here when they first run, and bench, generate and eval
 * never do. */
#ifndef SL_BLAS_H
#define SL_BLAS_H

#include <cblas.h>
#include <lapacke.h>

#include "sl_error.h"

typedef struct sl_blas_fns {
    __typeof__(cblas_sgemm) *sgemm;
    __typeof__(cblas_ssymm) *ssymm;
    __typeof__(cblas_ssyrk) *ssyrk;
    __typeof__(LAPACKE_spotrf) *spotrf;
    __typeof__(LAPACKE_spotri) *spotri;
    char *(*corename)(void); /* openblas_get_corename */
} sl_blas_fns;

/* The functions, the libraries loaded the first time (thread-safe); NULL
 * with err set (SL_EUNSUPPORTED, naming the library) where they cannot be. */
const sl_blas_fns *sl_blas(sl_err *err);

#endif
