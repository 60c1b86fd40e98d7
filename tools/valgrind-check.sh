#!/usr/bin/env bash
# valgrind memcheck on `q7 info`, `q7 run` and `q7 eval` over the fixtures (the reliability
# check of issue 7): any invalid access, use of uninitialised memory or leak (definite,
# indirect or possible) fails the run.
#
#   tools/valgrind-check.sh [build dir]      (default: build; ~5 minutes on 2 cores)
#
# libjpeg-turbo's SIMD code reads padding it allocated but never wrote, which memcheck
# reports as uninitialised values in the decoded photo (and everything computed from it);
# JSIMD_FORCENONE=1 makes it use its C code, whose pixels are the same. tools/valgrind.supp
# hides a read of glibc's dynamic loader. Logs: <build>/valgrind-<command>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
bd=${1:-build}
fx=${Q7_FIXTURES:-../shared/fixtures}
q7=$bd/tools/q7
command -v valgrind >/dev/null || { echo "valgrind-check.sh: valgrind is not installed" >&2; exit 1; }
[ -x "$q7" ] || { echo "valgrind-check.sh: no $q7 (build first)" >&2; exit 1; }
export JSIMD_FORCENONE=1
vg=(valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=9
    --suppressions=tools/valgrind.supp)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # name args...
    local name=$1
    shift
    local log=$bd/valgrind-$name.log
    "${vg[@]}" "$q7" "$@" >"$log" 2>&1
    local rc=$?
    local errors leaks
    errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)
    leaks=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -1)
    printf '%-6s exit %d, %s errors, definitely lost %s bytes (%s)\n' "$name" "$rc" \
        "${errors:-?}" "${leaks:-0}" "$log"
    [ "$rc" = 0 ] && [ "${errors:-1}" = 0 ] || fail=1
}
check info info "$fx/yolov7-tiny/model.pt" --fused --json "$tmp/info.json"
check run run --weights "$fx/yolov7-tiny/model.pt" --input "$fx/yolov7-tiny/ref/input_horses.npy" \
    --output "$tmp/raw.npy" --threads 1
check eval eval --weights "$fx/family/deploy-yolov7-tiny.pt" --data "$fx/yolov7-tiny/data/val.txt" \
    --batch 2 --threads 2 --workers 2 --decoder turbo --json "$tmp/eval.json"
[ "$fail" = 0 ] && echo "valgrind-check: clean" || echo "valgrind-check: FAILED"
exit "$fail"
