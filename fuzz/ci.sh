#!/usr/bin/env bash
# Short fuzzing pass for CI: installs cargo-fuzz when missing, seeds the corpora, runs every
# target for FUZZ_SECS (default 15) seconds. Fails when any target crashes, times out or runs
# out of memory. Budget: about 2 minutes to build, 7 × 15 s to run.
set -euo pipefail
cd "$(dirname "$0")"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
./seed.sh
exec ./run.sh "${FUZZ_SECS:-15}"
