/* cmd_convert.c - `sluice convert` and `sluice synth`: sources into images. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sl_checksum.h"
#include "sl_model_src.h"
#include "sl_synth.h"
#include "sl_types.h"
#include "sluice_cli.h"

static int parse_type(const char *s, uint32_t *out)
{
    if (strcmp(s, "keep") == 0) {
        *out = SL_TYPE_KEEP;
        return 0;
    }
    const sl_type_traits *t = sl_type_by_name(s);
    if (!t || !t->convertible) {
        fprintf(stderr, "sluice: type '%s' cannot be written (f32 f16 bf16 q8_0 q4_0 q4_1; convert also takes keep)\n", s);
        return -1;
    }
    *out = t->id;
    return 0;
}

static int write_image(const sl_model_src *m, const char *out, uint32_t type, const char *recipe)
{
    sl_err err = {0};
    char sum[SL_CHECKSUM_STRLEN + 1];
    sl_write_opts o = {.type = type, .recipe = recipe, .report = stderr};
    if (sl_model_write(m, out, &o, sum, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        return SL_EXIT_ERROR;
    }
    struct stat st;
    long long size = stat(out, &st) == 0 ? (long long)st.st_size : -1;
    printf("wrote %s: %u tensors, %lld bytes, %s\n", out, m->n_tensors, size, sum);
    return SL_EXIT_OK;
}

/* "GGUF", "ak42" or anything else (taken as a llama2.c float checkpoint). */
static const char *sniff(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return "hf";
    FILE *f = fopen(path, "rb");
    unsigned char b[4] = {0};
    if (!f)
        return "missing";
    size_t n = fread(b, 1, 4, f);
    fclose(f);
    if (n == 4 && memcmp(b, "GGUF", 4) == 0)
        return "gguf";
    if (n == 4 && memcmp(b, "24ka", 4) == 0)
        return "ak42";
    return "llama2c";
}

int sl_cmd_convert(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'}, {"tokenizer", required_argument, 0, 'z'},
                                         {"type", required_argument, 0, 't'},   {"name", required_argument, 0, 'n'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *out = NULL, *tok = NULL, *name = NULL, *type_s = "keep";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:z:t:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'z': tok = optarg; break;
        case 't': type_s = optarg; break;
        case 'n': name = optarg; break;
        case 'h':
            printf("usage: sluice convert SRC -o OUT [-z TOKENIZER] [--type T|keep] [--name NAME]\n");
            return SL_EXIT_OK;
        default: return SL_EXIT_ERROR;
        }
    }
    if (optind != argc - 1 || !out) {
        fprintf(stderr, "usage: sluice convert SRC -o OUT [-z TOKENIZER] [--type T|keep] [--name NAME]\n");
        return SL_EXIT_ERROR;
    }
    uint32_t type;
    if (parse_type(type_s, &type))
        return SL_EXIT_ERROR;
    const char *src = argv[optind], *kind = sniff(src);
    sl_model_src m;
    sl_err err = {0};
    sl_status st;
    if (strcmp(kind, "missing") == 0) {
        fprintf(stderr, "sluice: cannot open '%s': %s\n", src, strerror(errno));
        return SL_EXIT_ERROR;
    } else if (strcmp(kind, "gguf") == 0) {
        st = sl_import_gguf(src, &m, &err);
    } else if (strcmp(kind, "hf") == 0) {
        st = sl_import_hf(src, &m, &err);
    } else if (strcmp(kind, "ak42") == 0) {
        st = sl_import_ak42(src, tok, &m, &err);
    } else {
        st = sl_import_llama2c(src, tok, &m, &err);
    }
    if (st) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        return SL_EXIT_ERROR;
    }
    if (!m.has_vocab && !m.gguf)
        fprintf(stderr, "sluice: note: no tokenizer given; the image has no vocabulary\n");
    if (name)
        snprintf(m.name, sizeof m.name, "%s", name);
    char recipe[512];
    snprintf(recipe, sizeof recipe, "convert --type %s (from %s)", type_s, m.source);
    int rc = write_image(&m, out, type, recipe);
    sl_model_src_free(&m);
    return rc;
}

int sl_cmd_synth(int argc, char **argv)
{
    static const struct option opts[] = {{"shape", required_argument, 0, 's'}, {"type", required_argument, 0, 't'},
                                         {"output", required_argument, 0, 'o'}, {"seed", required_argument, 0, 'S'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *shape = NULL, *type_s = "f32", *out = NULL;
    unsigned long long seed = 1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:t:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 's': shape = optarg; break;
        case 't': type_s = optarg; break;
        case 'o': out = optarg; break;
        case 'S': {
            char *end;
            errno = 0;
            seed = strtoull(optarg, &end, 10);
            if (errno || *end || !*optarg) {
                fprintf(stderr, "sluice: --seed needs a non-negative integer\n");
                return SL_EXIT_ERROR;
            }
            break;
        }
        case 'h':
            printf("usage: sluice synth --shape %s --type T -o OUT [--seed S]\n", sl_synth_names());
            return SL_EXIT_OK;
        default: return SL_EXIT_ERROR;
        }
    }
    if (!shape || !out || optind != argc) {
        fprintf(stderr, "usage: sluice synth --shape %s --type T -o OUT [--seed S]\n", sl_synth_names());
        return SL_EXIT_ERROR;
    }
    const sl_synth_shape *s = sl_synth_find(shape);
    if (!s) {
        fprintf(stderr, "sluice: unknown shape '%s' (known: %s)\n", shape, sl_synth_names());
        return SL_EXIT_ERROR;
    }
    uint32_t type = 0;
    if (parse_type(type_s, &type) || type == SL_TYPE_KEEP) {
        if (type == SL_TYPE_KEEP)
            fprintf(stderr, "sluice: synth needs a concrete --type\n");
        return SL_EXIT_ERROR;
    }
    sl_model_src m;
    sl_err err = {0};
    if (sl_synth_model(s, seed, &m, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        return SL_EXIT_ERROR;
    }
    char recipe[256];
    snprintf(recipe, sizeof recipe, "synth --shape %s --type %s --seed %llu", shape, type_s, seed);
    int rc = write_image(&m, out, type, recipe);
    sl_model_src_free(&m);
    return rc;
}
