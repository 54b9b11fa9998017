/* blas.c - OpenBLAS and LAPACKE loaded on first use (sl_blas.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "sl_blas.h"

static sl_blas_fns fns;
static char failure[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *open_lib(const char *name)
{
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        snprintf(failure, sizeof failure, "%s", dlerror());
    return h;
}

static void *sym(void *h, const char *name)
{
    void *p = h ? dlsym(h, name) : NULL;
    if (h && !p)
        snprintf(failure, sizeof failure, "%s", dlerror());
    return p;
}

static void load(void)
{
    /* the sonames of Debian's libopenblas0 and liblapacke (which brings
     * OpenBLAS's LAPACK); handles stay open for the process's life */
    void *blas = open_lib("libopenblas.so.0");
    void *lapacke = blas ? open_lib("liblapacke.so.3") : NULL;
    sl_blas_fns f;
    /* POSIX's way from a data pointer to a function pointer */
    *(void **)&f.sgemm = sym(blas, "cblas_sgemm");
    *(void **)&f.ssymm = sym(blas, "cblas_ssymm");
    *(void **)&f.ssyrk = sym(blas, "cblas_ssyrk");
    *(void **)&f.corename = sym(blas, "openblas_get_corename");
    *(void **)&f.spotrf = sym(lapacke, "LAPACKE_spotrf");
    *(void **)&f.spotri = sym(lapacke, "LAPACKE_spotri");
    if (f.sgemm && f.ssymm && f.ssyrk && f.corename && f.spotrf && f.spotri)
        fns = f;
}

const sl_blas_fns *sl_blas(sl_err *err)
{
    pthread_once(&once, load);
    if (fns.sgemm)
        return &fns;
    sl_err_set(err, SL_EUNSUPPORTED, "the optimizer's methods need OpenBLAS and LAPACKE (Debian: libopenblas0 liblapacke): %s",
               failure);
    return NULL;
}
