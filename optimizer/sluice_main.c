/* sluice_main.c - the `sluice` command: model images from import to
 * inspection.  Each subcommand lives in its own cmd_*.c file. */
#include <stdio.h>
#include <string.h>

#include "sl_build_config.h"
#include "sluice_cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "sluice %s - model images for the sluice inference appliance: make, inspect, run, measure\n"
            "\n"
            "usage: sluice COMMAND [ARGS]\n"
            "\n"
            "  inspect IMAGE [--json] [--no-verify]\n"
            "      describe a GGUF image: shape, tensors, parameters by kind, metadata, checksum\n"
            "  convert SRC -o OUT [-z TOKENIZER] [--type T|keep] [--name NAME]\n"
            "      import a llama2.c checkpoint (.bin + tokenizer.bin), a llama2.c Q8 export (ak42),\n"
            "      a Hugging Face directory (config.json + model.safetensors) or a GGUF file\n"
            "  synth --shape NAME --type T -o OUT [--seed S]\n"
            "      write a random-weight Llama image of a real shape (tiny, 110m, 1b, 8b)\n"
            "  generate IMAGE -p PROMPT -n N [-t TEMP] [--top-k K] [--top-p P] [--seed S] [--threads T] [--json]\n"
            "      continue a prompt (greedy at -t 0)\n"
            "  eval IMAGE (--text FILE | --tokens FILE) [--ref BASE] [--ctx N] [--split SEP] [--json]\n"
            "      perplexity; with --ref, KL divergence and top-1 agreement against a base image\n"
            "  bench IMAGE [--threads T] [--json]\n"
            "      prompt and generation tokens/s at 1, 4, 16, 64 sequences; memory; bandwidth ceiling\n"
            "  kbench IMAGE [--tokens 1,16] [--isa LIST] [--rows R] [--json]\n"
            "      the matrix kernels alone over the image's weights, each ISA level against the first\n"
            "  quantize IN -o OUT --type T [--method rtn|gptq|awq] [--calib FILE] [--recipe FILE] [--json]\n"
            "      requantize a GGUF image; GPTQ and AWQ calibrate on text\n"
            "  validate CANDIDATE --base BASE (--text FILE | --tokens FILE) [--split SEP] [--json]\n"
            "      the quality gate: perplexity, KL divergence, top-1 and layer errors against the base;\n"
            "      the verdict is written into the candidate\n"
            "\n"
            "Types: f32 f16 bf16 q8_0 q4_0 q4_1.  Exit status: 0 ok, 1 check failed, 2 error.\n",
            SL_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? SL_EXIT_ERROR : SL_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("sluice %s\n", SL_VERSION);
        return SL_EXIT_OK;
    }
    if (strcmp(argv[1], "inspect") == 0)
        return sl_cmd_inspect(argc - 1, argv + 1);
    if (strcmp(argv[1], "convert") == 0)
        return sl_cmd_convert(argc - 1, argv + 1);
    if (strcmp(argv[1], "synth") == 0)
        return sl_cmd_synth(argc - 1, argv + 1);
    if (strcmp(argv[1], "generate") == 0)
        return sl_cmd_generate(argc - 1, argv + 1);
    if (strcmp(argv[1], "eval") == 0)
        return sl_cmd_eval(argc - 1, argv + 1);
    if (strcmp(argv[1], "bench") == 0)
        return sl_cmd_bench(argc - 1, argv + 1);
    if (strcmp(argv[1], "kbench") == 0)
        return sl_cmd_kbench(argc - 1, argv + 1);
    if (strcmp(argv[1], "validate") == 0)
        return sl_cmd_validate(argc - 1, argv + 1);
    if (strcmp(argv[1], "quantize") == 0)
        return sl_cmd_quantize(argc - 1, argv + 1);
    fprintf(stderr, "sluice: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return SL_EXIT_ERROR;
}
