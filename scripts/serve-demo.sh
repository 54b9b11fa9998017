#!/usr/bin/env bash
# The README's first command: set up, build, make an image, start sluiced on
# loopback serving it, ask it for 32 tokens over TCP, and stop it (it drains
# and exits after the answer).  The image has random weights: the
# continuation is gibberish, the path it takes is the real one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -d build ] || meson setup build
meson compile -C build
build/optimizer/sluice synth --shape tiny --type q8_0 -o tiny.gguf
build/firmware/sluiced --model default=tiny.gguf &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
build/dataplane/sluice-client --wait 10 -n 32 "Once upon a time"
