#!/usr/bin/env bash
# Writes seed corpora into fuzz/corpus/<target>/ from captures/ and the synthesizer (through the
# main crate's `fuzz_seeds` example, which shares the main build). Targets whose input is an
# `arbitrary` structure start from an empty corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --example fuzz_seeds -- fuzz/corpus
