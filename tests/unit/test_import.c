/* Importers against the real files in ../shared/models: llama2.c float and
 * Q8 checkpoints, the llama.cpp GGUF of the same model, a Hugging Face
 * layout written from it, and the Llama 2 vocabulary. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <math.h>
#include <sys/stat.h>

#include "sl_checksum.h"
#include "sl_gguf.h"
#include "sl_model_src.h"
#include "sl_types.h"
#include "test_support.h"

static sl_gguf *convert_open(const char *out, sl_model_src *m, uint32_t type)
{
    sl_err err = {0};
    sl_write_opts o = {.type = type, .recipe = "test"};
    cr_assert_eq(sl_model_write(m, out, &o, NULL, &err), SL_OK, "%s", err.msg);
    sl_gguf *g;
    cr_assert_eq(sl_gguf_open(out, SL_GGUF_VERIFY_CHECKSUM, &g, &err), SL_OK, "%s", err.msg);
    return g;
}

static uint32_t getu(const sl_gguf *g, const char *k)
{
    uint32_t v = 0;
    sl_err err;
    cr_assert_eq(sl_gguf_get_u32(g, k, &v, &err), SL_OK, "%s", err.msg);
    return v;
}

static void same_tensor(const sl_gguf_tensor *a, const sl_gguf_tensor *b)
{
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_eq(a->type, b->type, "%s type", a->name);
    cr_assert_eq(a->n_dims, b->n_dims, "%s dims", a->name);
    for (int d = 0; d < 4; d++)
        cr_assert_eq(a->ne[d], b->ne[d], "%s ne[%d]", a->name, d);
    cr_assert_eq(memcmp(a->data, b->data, a->nbytes), 0, "%s and %s differ", a->name, b->name);
}

/* stories260K from llama2.c, written to out as it is, and reopened. */
static sl_gguf *stories260K_image(const char *models, const char *out)
{
    sl_model_src m;
    sl_err err = {0};
    cr_assert_eq(sl_import_llama2c(test_path(models, "stories260K.bin"), test_path(models, "tok512.bin"), &m, &err),
                 SL_OK, "%s", err.msg);
    sl_gguf *g = convert_open(out, &m, SL_TYPE_KEEP);
    sl_model_src_free(&m);
    return g;
}

Test(import, llama2c_stories260K_matches_llama_cpp_gguf_bit_for_bit)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir();
    sl_err err = {0};
    sl_gguf *g = stories260K_image(models, test_path(dir, "s.gguf"));
    cr_assert_eq(getu(g, "llama.embedding_length"), 64);
    cr_assert_eq(getu(g, "llama.feed_forward_length"), 172);
    cr_assert_eq(getu(g, "llama.block_count"), 5);
    cr_assert_eq(getu(g, "llama.attention.head_count"), 8);
    cr_assert_eq(getu(g, "llama.attention.head_count_kv"), 4);
    cr_assert_eq(getu(g, "llama.vocab_size"), 512);
    cr_assert_eq(getu(g, "llama.context_length"), 512);
    cr_assert_eq(getu(g, "llama.rope.dimension_count"), 8);
    cr_assert_eq(getu(g, "tokenizer.ggml.bos_token_id"), 1);
    cr_assert_eq(getu(g, "tokenizer.ggml.eos_token_id"), 2);
    cr_assert_eq(g->n_tensors, 47, "tied classifier: no output.weight copy");

    sl_gguf *ref;
    cr_assert_eq(sl_gguf_open(test_path(models, "stories260K.gguf"), 0, &ref, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(ref->alignment, 32, "llama.cpp's file opens at its own alignment");
    int compared = 0;
    for (uint64_t i = 0; i < ref->n_tensors; i++) {
        const sl_gguf_tensor *rt = &ref->tensors[i];
        const sl_gguf_tensor *mt = sl_gguf_find_tensor(g, strcmp(rt->name, "output.weight") ? rt->name : "token_embd.weight");
        same_tensor(mt, rt);
        compared++;
    }
    cr_assert_eq(compared, 48);
    /* Vocabulary: same pieces, scores and types as llama.cpp's conversion. */
    const sl_gguf_kv *a = sl_gguf_find(g, "tokenizer.ggml.tokens"), *b = sl_gguf_find(ref, "tokenizer.ggml.tokens");
    cr_assert_eq(a->arr_n, 512);
    cr_assert_eq(a->val_size, b->val_size);
    cr_assert_eq(memcmp(a->val, b->val, a->val_size), 0, "token pieces equal llama.cpp's");
    float sa[512], sb[512];
    cr_assert_eq(sl_gguf_arr_f32(sl_gguf_find(g, "tokenizer.ggml.scores"), sa, &err), SL_OK);
    cr_assert_eq(sl_gguf_arr_f32(sl_gguf_find(ref, "tokenizer.ggml.scores"), sb, &err), SL_OK);
    cr_assert_arr_eq(sa, sb, sizeof sa);
    int64_t ta[512], tb[512];
    cr_assert_eq(sl_gguf_arr_i64(sl_gguf_find(g, "tokenizer.ggml.token_type"), ta, &err), SL_OK);
    cr_assert_eq(sl_gguf_arr_i64(sl_gguf_find(ref, "tokenizer.ggml.token_type"), tb, &err), SL_OK);
    cr_assert_arr_eq(ta, tb, sizeof ta);
    sl_gguf_close(ref);
    sl_gguf_close(g);
    test_rmtree(dir);
}

Test(import, llama2c_q8_export_dequantizes_groups_across_rows)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir();
    sl_model_src q, f;
    sl_err err = {0};
    cr_assert_eq(sl_import_ak42(test_path(models, "stories260K-q8.bin"), test_path(models, "tok512.bin"), &q, &err),
                 SL_OK, "%s", err.msg);
    cr_assert_eq(sl_import_llama2c(test_path(models, "stories260K.bin"), NULL, &f, &err), SL_OK, "%s", err.msg);
    sl_gguf *gq = convert_open(test_path(dir, "q.gguf"), &q, SL_TYPE_F32);
    sl_gguf *gf = convert_open(test_path(dir, "f.gguf"), &f, SL_TYPE_F32);
    /* Norms are stored unquantized and equal; weights within the export's
     * own error (~0.006 per the file's provenance notes). */
    double worst = 0;
    for (uint64_t i = 0; i < gf->n_tensors; i++) {
        const sl_gguf_tensor *tf = &gf->tensors[i], *tq = sl_gguf_find_tensor(gq, tf->name);
        cr_assert_not_null(tq, "%s missing from the q8 import", tf->name);
        const float *a = (const float *)tf->data, *b = (const float *)tq->data;
        for (uint64_t j = 0; j < tf->n_elems; j++) {
            double d = fabs((double)a[j] - (double)b[j]);
            if (tf->n_dims == 1)
                cr_assert_eq(d, 0.0, "%s[%llu] norm weights equal", tf->name, (unsigned long long)j);
            worst = d > worst ? d : worst;
        }
    }
    cr_assert(worst > 0 && worst < 0.0075, "max |q8 - f32| = %g", worst);
    /* ffn_down rows are 172 wide: row 1 starts inside group 21 (172 = 21*8 + 4);
     * its first element uses scale 21, read across the row boundary. */
    const sl_gguf_tensor *down = sl_gguf_find_tensor(gq, "blk.0.ffn_down.weight");
    const sl_map *map = &q.maps[0];
    const uint8_t *p = map->data + 256 + (5 * 64 * 2 + 64) * 4;
    p += 512 * 64 + 512 * 64 / 8 * 4; /* token embedding */
    uint64_t per[7] = {64 * 64, 64 * 32, 64 * 32, 64 * 64, 64 * 172, 172 * 64, 64 * 172};
    for (int k = 0; k < 5; k++)
        p += 5 * (per[k] + per[k] / 8 * 4); /* wq..w1 of all layers: w2 of layer 0 is next */
    float s21;
    memcpy(&s21, p + per[5] + 21 * 4, 4);
    cr_assert_eq(((const float *)down->data)[172], (float)(int8_t)p[172] * s21);
    sl_gguf_close(gq);
    sl_gguf_close(gf);
    sl_model_src_free(&q);
    sl_model_src_free(&f);
    test_rmtree(dir);
}

/* Writes stories260K as a Hugging Face checkpoint: HF names, Q/K rows in
 * the half-split RoPE order, config.json, tokenizer.json. */
static void write_hf(const char *hfdir, const sl_gguf *g)
{
    json_object *hdr = json_object_new_object();
    uint64_t off = 0;
    struct { const char *gg, *hf; int perm; } names[] = {
        {"attn_norm", "input_layernorm", 0}, {"attn_q", "self_attn.q_proj", 8}, {"attn_k", "self_attn.k_proj", 4},
        {"attn_v", "self_attn.v_proj", 0}, {"attn_output", "self_attn.o_proj", 0},
        {"ffn_norm", "post_attention_layernorm", 0}, {"ffn_gate", "mlp.gate_proj", 0},
        {"ffn_down", "mlp.down_proj", 0}, {"ffn_up", "mlp.up_proj", 0}};
    size_t cap = 2 << 20, n = 0;
    uint8_t *data = malloc(cap);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sl_gguf_tensor *t = &g->tensors[i];
        char hf[160];
        int perm = 0;
        unsigned l;
        char rest[64];
        if (strcmp(t->name, "token_embd.weight") == 0)
            snprintf(hf, sizeof hf, "model.embed_tokens.weight");
        else if (strcmp(t->name, "output_norm.weight") == 0)
            snprintf(hf, sizeof hf, "model.norm.weight");
        else {
            cr_assert_eq(sscanf(t->name, "blk.%u.%63[a-z_]", &l, rest), 2);
            size_t k;
            for (k = 0; k < 9 && strcmp(names[k].gg, rest) != 0; k++)
                ;
            cr_assert(k < 9, "%s", t->name);
            snprintf(hf, sizeof hf, "model.layers.%u.%s.weight", l, names[k].hf);
            perm = names[k].perm;
        }
        uint64_t rows = t->n_dims == 2 ? t->ne[1] : 1, cols = t->ne[0], hd = perm ? rows / (uint64_t)perm : 0;
        for (uint64_t r = 0; r < rows; r++) {
            /* HF row h*hd + j*hd/2 + k holds GGUF row h*hd + 2k + j. */
            uint64_t src = r;
            if (perm) {
                uint64_t h = r / hd, i2 = r % hd, j = i2 / (hd / 2), k = i2 % (hd / 2);
                src = h * hd + 2 * k + j;
            }
            memcpy(data + n + r * cols * 4, t->data + src * cols * 4, cols * 4);
        }
        json_object *e = json_object_new_object(), *sh = json_object_new_array(), *of = json_object_new_array();
        json_object_object_add(e, "dtype", json_object_new_string("F32"));
        if (t->n_dims == 2)
            json_object_array_add(sh, json_object_new_int64((int64_t)rows));
        json_object_array_add(sh, json_object_new_int64((int64_t)cols));
        json_object_object_add(e, "shape", sh);
        json_object_array_add(of, json_object_new_int64((int64_t)off));
        json_object_array_add(of, json_object_new_int64((int64_t)(off + t->nbytes)));
        json_object_object_add(e, "data_offsets", of);
        json_object_object_add(hdr, hf, e);
        off += t->nbytes;
        n += t->nbytes;
        cr_assert(n < cap);
    }
    const char *hs = json_object_to_json_string_ext(hdr, JSON_C_TO_STRING_PLAIN);
    uint64_t hl = strlen(hs);
    FILE *f = fopen(test_path(hfdir, "model.safetensors"), "wb");
    cr_assert_not_null(f);
    fwrite(&hl, 8, 1, f);
    fwrite(hs, 1, hl, f);
    fwrite(data, 1, n, f);
    fclose(f);
    json_object_put(hdr);
    free(data);
    const char *cfg = "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":64,"
                      "\"intermediate_size\":172,\"num_hidden_layers\":5,\"num_attention_heads\":8,"
                      "\"num_key_value_heads\":4,\"vocab_size\":512,\"max_position_embeddings\":512,"
                      "\"rms_norm_eps\":1e-05,\"rope_theta\":10000.0,\"tie_word_embeddings\":true}";
    test_spit(test_path(hfdir, "config.json"), cfg, strlen(cfg));
    /* tokenizer.json: BPE with byte fallback, ids as in the image. */
    json_object *tj = json_object_new_object(), *model = json_object_new_object(), *vocab = json_object_new_object();
    json_object *added = json_object_new_array();
    const sl_gguf_kv *toks = sl_gguf_find(g, "tokenizer.ggml.tokens");
    sl_str pieces[512];
    cr_assert_eq(sl_gguf_arr_strings(toks, pieces, NULL), SL_OK);
    for (int i = 0; i < 512; i++) {
        char p[64];
        snprintf(p, sizeof p, "%.*s", (int)pieces[i].len, pieces[i].ptr);
        json_object_object_add(vocab, p, json_object_new_int(i));
        if (i < 3) {
            json_object *a = json_object_new_object();
            json_object_object_add(a, "id", json_object_new_int(i));
            json_object_object_add(a, "content", json_object_new_string(p));
            json_object_object_add(a, "special", json_object_new_boolean(1));
            json_object_array_add(added, a);
        }
    }
    json_object_object_add(model, "type", json_object_new_string("BPE"));
    json_object_object_add(model, "byte_fallback", json_object_new_boolean(1));
    json_object_object_add(model, "unk_token", json_object_new_string("<unk>"));
    json_object_object_add(model, "vocab", vocab);
    json_object_object_add(model, "merges", json_object_new_array());
    json_object_object_add(tj, "model", model);
    json_object_object_add(tj, "added_tokens", added);
    const char *ts = json_object_to_json_string(tj);
    test_spit(test_path(hfdir, "tokenizer.json"), ts, strlen(ts));
    json_object_put(tj);
}

Test(import, hugging_face_layout_round_trips_bit_for_bit)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir();
    sl_model_src m;
    sl_err err = {0};
    sl_gguf *g = stories260K_image(models, test_path(dir, "l2c.gguf"));
    char hfdir[4200];
    snprintf(hfdir, sizeof hfdir, "%s/hf", dir);
    cr_assert_eq(mkdir(hfdir, 0755), 0);
    write_hf(hfdir, g);
    cr_assert_eq(sl_import_hf(hfdir, &m, &err), SL_OK, "%s", err.msg);
    cr_assert(m.has_vocab, "tokenizer.json was read");
    sl_gguf *h = convert_open(test_path(dir, "hf.gguf"), &m, SL_TYPE_KEEP);
    sl_model_src_free(&m);
    cr_assert_eq(h->n_tensors, g->n_tensors);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        same_tensor(sl_gguf_find_tensor(h, g->tensors[i].name), &g->tensors[i]);
    sl_str sa, sb;
    cr_assert_eq(sl_gguf_get_str(g, "sluice.content_checksum", &sa, NULL), SL_OK);
    cr_assert_eq(sl_gguf_get_str(h, "sluice.content_checksum", &sb, NULL), SL_OK);
    cr_assert(sa.len == sb.len && memcmp(sa.ptr, sb.ptr, sa.len) == 0, "same content checksum");
    const char *keys[] = {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"};
    for (int k = 0; k < 3; k++) {
        const sl_gguf_kv *a = sl_gguf_find(g, keys[k]), *b = sl_gguf_find(h, keys[k]);
        cr_assert_not_null(b, "%s", keys[k]);
        cr_assert(a->raw_size == b->raw_size && memcmp(a->raw, b->raw, a->raw_size) == 0, "%s equal", keys[k]);
    }
    /* A missing tensor is a clear error naming it. */
    const char *cfg6 = "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":172,"
                       "\"num_hidden_layers\":6,\"num_attention_heads\":8,\"num_key_value_heads\":4,"
                       "\"vocab_size\":512}";
    test_spit(test_path(hfdir, "config.json"), cfg6, strlen(cfg6));
    cr_assert_eq(sl_import_hf(hfdir, &m, &err), SL_ENOTFOUND);
    cr_assert(strstr(err.msg, "model.layers.5."), "%s", err.msg);
    sl_gguf_close(g);
    sl_gguf_close(h);
    test_rmtree(dir);
}

Test(import, gguf_from_llama_cpp_converts_to_q8_0_and_reopens)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir();
    sl_model_src m;
    sl_err err = {0};
    cr_assert_eq(sl_import_gguf(test_path(models, "stories260K.gguf"), &m, &err), SL_OK, "%s", err.msg);
    sl_gguf *g = convert_open(test_path(dir, "q8.gguf"), &m, SL_TYPE_Q8_0);
    sl_model_src_free(&m);
    cr_assert_eq(g->alignment, 64);
    cr_assert_eq(sl_gguf_find_tensor(g, "blk.0.attn_q.weight")->type, SL_TYPE_Q8_0);
    cr_assert_eq(sl_gguf_find_tensor(g, "blk.0.ffn_down.weight")->type, SL_TYPE_F16, "172-wide rows fall back");
    cr_assert_eq(sl_gguf_find_tensor(g, "blk.0.ffn_gate.weight")->type, SL_TYPE_Q8_0, "64-wide rows are whole blocks");
    cr_assert_eq(sl_gguf_find_tensor(g, "output_norm.weight")->type, SL_TYPE_F32);
    cr_assert_eq(getu(g, "general.file_type"), 7);
    cr_assert_eq(getu(g, "general.quantization_version"), 2);
    sl_str s;
    cr_assert_eq(sl_gguf_get_str(g, "sluice.parent_checksum", &s, NULL), SL_OK);
    cr_assert_eq(sl_gguf_get_str(g, "tokenizer.ggml.model", &s, NULL), SL_OK, "metadata carried over");
    /* Dequantized weights stay within q8_0's bound of the originals. */
    sl_gguf *ref;
    cr_assert_eq(sl_gguf_open(test_path(models, "stories260K.gguf"), 0, &ref, &err), SL_OK);
    const sl_gguf_tensor *tq = sl_gguf_find_tensor(g, "blk.2.attn_q.weight"), *tr = sl_gguf_find_tensor(ref, "blk.2.attn_q.weight");
    float row[64];
    for (uint64_t r = 0; r < 64; r++) {
        cr_assert_eq(sl_dequantize_row(SL_TYPE_Q8_0, tq->data + r * 68, row, 64, &err), SL_OK);
        const float *x = (const float *)tr->data + r * 64;
        for (int b = 0; b < 2; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++)
                amax = fmaxf(amax, fabsf(x[b * 32 + j]));
            for (int j = 0; j < 32; j++)
                cr_assert(fabsf(row[b * 32 + j] - x[b * 32 + j]) <= amax / 254.0f + amax * 0x1p-10f + 127 * 0x1p-24f);
        }
    }
    sl_gguf_close(ref);
    sl_gguf_close(g);
    test_rmtree(dir);
}

Test(import, llama2_vocabulary_matches_llama_cpp_vocab_file)
{
    NEED_SHARED(models);
    sl_vocab v;
    sl_err err = {0};
    cr_assert_eq(sl_vocab_from_llama2c(test_path(models, "tokenizer.bin"), 32000, &v, &err), SL_OK, "%s", err.msg);
    sl_gguf *ref;
    cr_assert_eq(sl_gguf_open(test_path(models, "vocab/ggml-vocab-llama-spm.gguf"), 0, &ref, &err), SL_OK, "%s", err.msg);
    const sl_gguf_kv *kv = sl_gguf_find(ref, "tokenizer.ggml.tokens");
    cr_assert_eq(kv->arr_n, 32000);
    sl_str *p = calloc(32000, sizeof *p);
    float *sc = calloc(32000, sizeof *sc);
    cr_assert_eq(sl_gguf_arr_strings(kv, p, &err), SL_OK);
    cr_assert_eq(sl_gguf_arr_f32(sl_gguf_find(ref, "tokenizer.ggml.scores"), sc, &err), SL_OK);
    for (uint32_t i = 0; i < 32000; i++) {
        cr_assert(p[i].len == v.tokens[i].len && memcmp(p[i].ptr, v.tokens[i].ptr, p[i].len) == 0, "piece %u", i);
        cr_assert_eq(sc[i], v.scores[i], "score %u", i);
    }
    free(p);
    free(sc);
    sl_gguf_close(ref);
    sl_vocab_free(&v);
    /* Wrong vocabulary size: a clear error, not a silent misread. */
    cr_assert_eq(sl_vocab_from_llama2c(test_path(models, "tokenizer.bin"), 512, &v, &err), SL_EFORMAT);
    cr_assert(strstr(err.msg, "vocabulary size"), "%s", err.msg);
}

Test(import, broken_checkpoints_are_refused)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir();
    size_t len;
    unsigned char *b = test_slurp(test_path(models, "stories260K.bin"), &len);
    sl_model_src m;
    sl_err err = {0};
    test_spit(test_path(dir, "short.bin"), b, len - 4);
    cr_assert_eq(sl_import_llama2c(test_path(dir, "short.bin"), NULL, &m, &err), SL_EFORMAT);
    cr_assert(strstr(err.msg, "1056540"), "names the expected size: %s", err.msg);
    int32_t bad = 7; /* 64 is not divisible into 7 heads */
    memcpy(b + 12, &bad, 4);
    test_spit(test_path(dir, "heads.bin"), b, len);
    cr_assert_eq(sl_import_llama2c(test_path(dir, "heads.bin"), NULL, &m, &err), SL_EFORMAT);
    bad = -5;
    memcpy(b, &bad, 4);
    test_spit(test_path(dir, "neg.bin"), b, len);
    cr_assert_eq(sl_import_llama2c(test_path(dir, "neg.bin"), NULL, &m, &err), SL_EFORMAT);
    cr_assert(strstr(err.msg, "implausible"), "%s", err.msg);
    free(b);
    b = test_slurp(test_path(models, "stories260K-q8.bin"), &len);
    test_spit(test_path(dir, "q.bin"), b, len - 1);
    cr_assert_eq(sl_import_ak42(test_path(dir, "q.bin"), NULL, &m, &err), SL_EFORMAT);
    b[4] = 3;
    test_spit(test_path(dir, "q3.bin"), b, len);
    cr_assert_eq(sl_import_ak42(test_path(dir, "q3.bin"), NULL, &m, &err), SL_EUNSUPPORTED);
    free(b);
    b = test_slurp(test_path(models, "tok512.bin"), &len);
    test_spit(test_path(dir, "tok.bin"), b, len - 3);
    cr_assert_eq(sl_import_llama2c(test_path(models, "stories260K.bin"), test_path(dir, "tok.bin"), &m, &err), SL_EFORMAT);
    cr_assert(strstr(err.msg, "truncated") || strstr(err.msg, "claims"), "%s", err.msg);
    free(b);
    test_rmtree(dir);
}

/* A byte-level BPE tokenizer.json (GPT-2's vocabulary and merges, taken from
 * llama.cpp's vocab file) imports as a `gpt2` vocabulary with every piece and
 * merge in order. */
Test(import, byte_level_tokenizer_json_keeps_pieces_and_merges)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir();
    sl_gguf *ref;
    sl_err err = {0};
    cr_assert_eq(sl_gguf_open(test_path(models, "vocab/ggml-vocab-gpt-2.gguf"), 0, &ref, &err), SL_OK, "%s", err.msg);
    const sl_gguf_kv *tk = sl_gguf_find(ref, "tokenizer.ggml.tokens"), *mk = sl_gguf_find(ref, "tokenizer.ggml.merges");
    cr_assert_not_null(mk);
    uint32_t n = (uint32_t)tk->arr_n;
    sl_str *toks = calloc(n, sizeof *toks), *merges = calloc(mk->arr_n, sizeof *merges);
    cr_assert_eq(sl_gguf_arr_strings(tk, toks, &err), SL_OK);
    cr_assert_eq(sl_gguf_arr_strings(mk, merges, &err), SL_OK);
    json_object *tj = json_object_new_object(), *model = json_object_new_object(), *vocab = json_object_new_object();
    json_object *ma = json_object_new_array();
    for (uint32_t i = 0; i < n; i++) {
        char *p = strndup(toks[i].ptr, toks[i].len);
        json_object_object_add(vocab, p, json_object_new_int((int)i));
        free(p);
    }
    for (uint64_t i = 0; i < mk->arr_n; i++) /* half as "a b", half as [a, b]: both spellings exist */
        if (i % 2 == 0) {
            json_object_array_add(ma, json_object_new_string_len(merges[i].ptr, (int)merges[i].len));
        } else {
            const char *sp = memchr(merges[i].ptr, ' ', merges[i].len);
            cr_assert_not_null(sp);
            json_object *pair = json_object_new_array();
            json_object_array_add(pair, json_object_new_string_len(merges[i].ptr, (int)(sp - merges[i].ptr)));
            json_object_array_add(pair, json_object_new_string_len(sp + 1, (int)(merges[i].ptr + merges[i].len - sp - 1)));
            json_object_array_add(ma, pair);
        }
    json_object_object_add(model, "type", json_object_new_string("BPE"));
    json_object_object_add(model, "vocab", vocab);
    json_object_object_add(model, "merges", ma);
    json_object_object_add(tj, "model", model);
    const char *text = json_object_to_json_string_ext(tj, JSON_C_TO_STRING_PLAIN);
    const char *path = test_path(dir, "tokenizer.json");
    test_spit(path, text, strlen(text));
    json_object_put(tj);

    sl_vocab v;
    cr_assert_eq(sl_vocab_from_hf(path, n, &v, &err), SL_OK, "%s", err.msg);
    cr_assert_str_eq(v.model, "gpt2");
    cr_assert_null(v.scores);
    cr_assert_eq(v.n_merges, mk->arr_n);
    for (uint32_t i = 0; i < n; i++)
        cr_assert(v.tokens[i].len == toks[i].len && memcmp(v.tokens[i].ptr, toks[i].ptr, toks[i].len) == 0, "piece %u", i);
    for (uint64_t i = 0; i < mk->arr_n; i++)
        cr_assert(v.merges[i].len == merges[i].len && memcmp(v.merges[i].ptr, merges[i].ptr, merges[i].len) == 0,
                  "merge %llu", (unsigned long long)i);
    sl_vocab_free(&v);
    free(toks);
    free(merges);
    sl_gguf_close(ref);
    test_rmtree(dir);
}
