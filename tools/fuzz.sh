#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz/ with clang (-fsanitize=fuzzer,address,undefined)
# and runs each for a while. Not part of CI (CI replays the corpus and the regression inputs
# with tests/test_fuzz_regress under gcc + ASan); this is for finding new bugs.
#
#   tools/fuzz.sh [seconds per harness] [harness ...]     (default 60 s, every harness)
#   FUZZ_JOBS=2 tools/fuzz.sh 600 pickle zip               (harnesses run 2 at a time)
#   FUZZ_ARGS="-max_len=4096" tools/fuzz.sh 60 yaml         (more libFuzzer options)
#   FUZZ_TAG=-b tools/fuzz.sh 3600 ckpt_graph               (a second run of a harness beside one
#                                                            already running: its own log)
# Dictionaries: tests/fuzz/dict/<harness>.dict when present.
#
# Needs clang 14+ with its fuzzer runtime (Debian: clang, libclang-rt-14-dev). Output, all
# under fuzz-out/ (gitignored):
#   fuzz-out/<harness>/corpus/     inputs the fuzzer found interesting (grows across runs;
#                                  the seeds in tests/fuzz/corpus/<harness>/ are read-only)
#   fuzz-out/<harness>/crash-*, leak-*, timeout-*, oom-*   reproducers
#   fuzz-out/<harness>[tag].log    the fuzzer's log; the summary below reads its final stats
#   fuzz-out/runs.tsv              one line per harness run: date, harness, seconds run,
#                                  executions, total executions of that harness so far
# A reproducer, once the bug is fixed, goes (small) into tests/fuzz/regress/<harness>/.
# Reproduce one: build-fuzz/fuzz/fuzz_<harness> fuzz-out/<harness>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
all=(pickle zip ckpt_graph npy labels list coco_json amax_json image_stb image_turbo exif yaml)
if [ $# -gt 0 ]; then harnesses=("$@"); else harnesses=("${all[@]}"); fi
jobs=${FUZZ_JOBS:-1}
bd=build-fuzz
CC=${CC_FUZZ:-clang}

if ! "$CC" -fsanitize=fuzzer -x c - -o /dev/null >/dev/null 2>&1 <<<'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t * d, size_t n) { return 0; }'; then
    echo "fuzz.sh: $CC cannot link -fsanitize=fuzzer (Debian: apt-get install clang" \
         "libclang-rt-14-dev)" >&2
    exit 1
fi

# The q7 libraries instrumented for coverage (fuzzer-no-link) and the sanitizers; UBSan
# findings abort so that the fuzzer keeps them as crashes.
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
if [ ! -f "$bd/build.ninja" ]; then
    CC="$CC" meson setup "$bd" -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
        -Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined -gline-tables-only" \
        -Dcuda=disabled -Db_lundef=false >/dev/null
fi
libs=(graph/libq7graph.a models/libq7models.a kernels/libq7kernels.a quant/libq7quant.a
      eval/libq7eval.a)
ninja -C "$bd" "${libs[@]}" >/dev/null
ext_libs=$(pkg-config --libs libcjson yaml-0.1 stb)
ext_cflags=$(pkg-config --cflags stb)
if pkg-config --exists libturbojpeg; then ext_libs="$ext_libs $(pkg-config --libs libturbojpeg)"; fi
if pkg-config --exists openblas; then ext_libs="$ext_libs $(pkg-config --libs openblas)"; fi

mkdir -p "$bd/fuzz" fuzz-out
for h in "${harnesses[@]}"; do
    src=tests/fuzz/fuzz_$h.c
    [ -f "$src" ] || { echo "fuzz.sh: no harness $src" >&2; exit 1; }
    # shellcheck disable=SC2086
    "$CC" -O1 -g -std=c11 -D_GNU_SOURCE -I. $ext_cflags -fsanitize=fuzzer $san "$src" \
        -Wl,--start-group "${libs[@]/#/$bd/}" -Wl,--end-group $ext_libs -lm -lpthread \
        -o "$bd/fuzz/fuzz_$h"
done

run_one() {
    local h=$1
    mkdir -p "fuzz-out/$h/corpus"
    local dict=()
    [ -f "tests/fuzz/dict/$h.dict" ] && dict=(-dict="tests/fuzz/dict/$h.dict")
    local seeds=()
    for d in tests/fuzz/corpus/$h tests/fuzz/regress/$h; do [ -d "$d" ] && seeds+=("$d"); done
    # Fork mode (FUZZ_FORK=1, the default) keeps going after a finding and keeps every
    # reproducer; FUZZ_FORK=0 stops at the first one.
    local fork=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    [ "${FUZZ_FORK:-1}" = 0 ] && fork=()
    # Text and container readers: bugs live in the structure, which a few KB exercise (whole
    # model pickles are fuzzed by ckpt_graph); longer seeds are cut to max_len on load.
    local extra=()
    case $h in
    pickle | zip | yaml | amax_json | coco_json | list | labels) extra=(-max_len=4096) ;;
    esac
    # shellcheck disable=SC2206
    extra+=(${FUZZ_ARGS:-})
    # -timeout: one input over 10 s is a hang; -rss_limit_mb / -malloc_limit_mb: an input
    # that makes the reader allocate past 2 GiB at once is an unbounded-allocation finding.
    "$bd/fuzz/fuzz_$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2560 \
        -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="fuzz-out/$h/" \
        "${fork[@]}" "${dict[@]}" "${extra[@]}" "fuzz-out/$h/corpus" "${seeds[@]}" \
        >"fuzz-out/$h${FUZZ_TAG:-}.log" 2>&1 ||
        true
}

# Harnesses that read through a file write it once per input: keep that in memory.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi

running=0
for h in "${harnesses[@]}"; do
    echo "fuzzing $h for ${secs}s (log: fuzz-out/$h${FUZZ_TAG:-}.log)"
    run_one "$h" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

printf '\n%-12s %12s %8s %8s %8s  %s\n' harness executions exec/s cov ft findings
for h in "${harnesses[@]}"; do
    log=fuzz-out/$h${FUZZ_TAG:-}.log
    # executions: the final stats, or in fork mode the last status line (#N: cov: ...)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9][0-9]*\)[: ].*cov:.*/\1/p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    [ -n "$rate" ] || rate=$(sed -n 's/.*exec\/s:* \([0-9][0-9]*\).*/\1/p' "$log" | tail -1)
    cov=$(sed -n 's/.*cov: \([0-9][0-9]*\).*/\1/p' "$log" | tail -1)
    ft=$(sed -n 's/.*ft: \([0-9][0-9]*\).*/\1/p' "$log" | tail -1)
    found=$(find "fuzz-out/$h" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
        -o -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) | wc -l)
    printf '%-12s %12s %8s %8s %8s  %s\n' "$h" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
        "${ft:-?}" "$found"
    # every run adds a line to fuzz-out/runs.tsv; the total column sums a harness's runs
    prev=$(awk -F'\t' -v h="$h" '$2 == h { t += $4 } END { print t + 0 }' fuzz-out/runs.tsv \
        2>/dev/null || echo 0)
    # seconds actually fuzzed (libFuzzer's "Done N runs in S second(s)"), or the seconds asked
    # when it printed none (a run that died on a finding)
    ran=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$h" "${ran:-$secs}" "${execs:-0}" \
        "$((prev + ${execs:-0}))" >>fuzz-out/runs.tsv
done
