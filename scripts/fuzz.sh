#!/usr/bin/env bash
# Runs the property tests long, in release mode: the decoder's (adjust::decode::fuzz) and the
# connection wrapper's differential test against httparse (http::longuri::fuzz), CASES cases
# each (default 1,000,000; `cargo test` runs a few thousand).
#
# Usage: scripts/fuzz.sh [CASES]
#
# Every property test counts the cases it executed and prints the count; this script checks
# that each test that ran reported at least CASES, prints the counts and a closing line, and
# exits non-zero on any failure. A failing input is shrunk, printed, and saved under
# proptest-regressions/ (replayed first on later runs).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

cases="${1:-1000000}"
if ! [[ "$cases" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [CASES]   (a positive case count, default 1000000)" >&2
    exit 2
fi
filters=(adjust::decode::fuzz:: http::longuri::fuzz::)
locked=()
[ -f Cargo.lock ] && locked=(--locked)

echo "==> cargo test --release --lib --no-run"
cargo test --release --lib "${locked[@]}" --no-run

echo "==> ${filters[*]}: $cases cases each"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
start=$SECONDS
status=0
ADJUST_SINK_FUZZ_CASES="$cases" cargo test --release --lib "${locked[@]}" -- --nocapture \
    "${filters[@]}" 2>&1 | tee "$log" || status=$?
elapsed=$((SECONDS - start))

ran=$(sed -n 's/^running \([0-9]*\) tests\{0,1\}$/\1/p' "$log" | head -n 1)
ran=${ran:-0}
echo
echo "==> cases executed per property test"
reported=0
short=0
while read -r name executed required; do
    echo "    $name: $executed cases (required $required)"
    reported=$((reported + 1))
    if [ "$executed" -lt "$cases" ] || [ "$required" -ne "$cases" ]; then
        short=$((short + 1))
    fi
done < <(sed -n 's/^fuzz: \([^:]*::[^:]*\): \([0-9]*\) cases executed, \([0-9]*\) required, passed.*/\1 \2 \3/p' "$log")

duration="$((elapsed / 60))m$((elapsed % 60))s"
if [ "$status" -ne 0 ] || [ "$ran" -eq 0 ] || [ "$reported" -ne "$ran" ] || [ "$short" -ne 0 ]; then
    echo "fuzz: FAILED ($reported of $ran property tests passed with $cases cases; cargo exit $status) after $duration"
    exit 1
fi
echo "fuzz: all $ran property tests passed, $cases cases each, in $duration"
