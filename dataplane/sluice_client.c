/* sluice-client - send one prompt to sluiced and print the answer as it
 * streams (the text on stdout, the DONE summary on stderr). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_client.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice-client [--host ADDR] [--port P] [--udp] [--model NAME] [-n MAX_TOKENS]\n"
               "                     [--temp T] [--top-k K] [--top-p P] [--seed S] [--deadline-ms D] [--wait S]\n"
               "                     [--key ID:HEX] PROMPT\n"
               "  Defaults: 127.0.0.1, port 7433, TCP, model \"default\", 64 tokens, greedy.\n"
               "  --wait S: keep trying to connect (TCP) for up to S seconds, for a daemon starting up.\n"
               "  --key ID:HEX signs the request (HMAC-SHA256) for a daemon that requires it.\n"
               "  Exit status: 0 answered, 1 the server answered with an error, 2 no answer.\n");
}

static void print_text(void *ctx, const uint32_t *ids, int n, const char *text, size_t len)
{
    (void)ctx, (void)ids, (void)n;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, 0, 'H'},  {"port", required_argument, 0, 'p'}, {"udp", no_argument, 0, 'u'},
        {"model", required_argument, 0, 'm'}, {"temp", required_argument, 0, 't'}, {"top-k", required_argument, 0, 'k'},
        {"top-p", required_argument, 0, 'P'}, {"seed", required_argument, 0, 's'},
        {"deadline-ms", required_argument, 0, 'd'}, {"wait", required_argument, 0, 'w'},
        {"key", required_argument, 0, 'K'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *host = "127.0.0.1", *model = "default";
    int port = 7433, udp = 0, wait_s = 0, o, keyed = 0;
    sl_mac_key key;
    sl_wire_generate g = {.max_tokens = 64, .top_p = 1.0f, .repeat_penalty = 1.0f, .options = SL_WIRE_O_STREAM};
    while ((o = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
        switch (o) {
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'u': udp = 1; break;
        case 'm': model = optarg; break;
        case 'n': g.max_tokens = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 't': g.temperature = strtof(optarg, NULL); break;
        case 'k': g.top_k = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'P': g.top_p = strtof(optarg, NULL); break;
        case 's': g.seed = strtoull(optarg, NULL, 10); break;
        case 'd': g.deadline_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'w': wait_s = atoi(optarg); break;
        case 'K':
            if (sl_mac_key_parse(optarg, &key)) {
                fprintf(stderr, "sluice-client: --key %s: ID:HEX with 16..64 bytes of key\n", optarg);
                return 2;
            }
            keyed = 1;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return 2;
    }
    g.model = (sl_wire_bytes){(const uint8_t *)model, strlen(model)};
    g.prompt_kind = SL_WIRE_TEXT;
    g.prompt = (const uint8_t *)argv[optind];
    g.prompt_len = (uint32_t)strlen(argv[optind]);
    sl_client *c;
    sl_err err = {0};
    for (int tries = 0;; tries++) { /* 10 tries a second while --wait lasts */
        if (sl_client_open(host, port, udp, &c, &err) == SL_OK)
            break;
        if (tries >= 10 * wait_s) {
            fprintf(stderr, "sluice-client: %s\n", err.msg);
            return 2;
        }
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    if (keyed)
        sl_client_set_key(c, &key);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const uint64_t rid = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    sl_client_result res;
    fputs(argv[optind], stdout);
    const sl_status st = sl_client_generate(c, rid, &g, print_text, NULL, 120000, &res, &err);
    sl_client_close(c);
    putchar('\n');
    fflush(stdout); /* the text before the summary on stderr */
    if (st) {
        fprintf(stderr, "sluice-client: %s\n", err.msg);
        return 2;
    }
    if (res.error) {
        fprintf(stderr, "sluice-client: %s: %s\n", sl_wire_code_name(res.error), res.message);
        return 1;
    }
    fprintf(stderr, "[%u prompt + %u generated tokens; first token after %.1f ms, all in %.1f ms; model version %llu, %s]\n",
            res.done.prompt_tokens, res.done.generated_tokens, (double)res.done.ttft_us / 1e3,
            (double)res.done.total_us / 1e3, (unsigned long long)res.done.model_version, res.checksum);
    return 0;
}
