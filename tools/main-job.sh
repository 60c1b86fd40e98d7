#!/usr/bin/env bash
# The main job: the seed's mAP table (origin, fused, fake-INT8 per amax method).
#
#   tools/main-job.sh                         # the fixture sample (../shared/fixtures/yolov7-tiny)
#   tools/main-job.sh WEIGHTS DATA [COCO_JSON] [extra q7 table options]
#       e.g. tools/main-job.sh yolov7.pt coco/val2017.txt coco/annotations/instances_val2017.json
set -euo pipefail
# Paths are the caller's: WEIGHTS, DATA and COCO_JSON relative to the current directory, and
# table.json / amax.json are written there. Q7=path picks another q7 binary.
root=$(cd "$(dirname "$0")/.." && pwd)
q7=${Q7:-$root/build/tools/q7}
if [ ! -x "$q7" ]; then
    if [ -n "${Q7:-}" ]; then
        echo "main-job.sh: Q7=$Q7 is not an executable" >&2
        exit 2
    fi
    "$root/tools/setup.sh"
fi

if [ $# -ge 2 ]; then
    weights=$1 data=$2
    shift 2
    coco=()
    if [ $# -ge 1 ] && [ "${1#-}" = "$1" ]; then
        coco=(--coco-json "$1")
        shift
    fi
    exec "$q7" table --weights "$weights" --data "$data" "${coco[@]}" --batch 8 \
        --json table.json --save-amax amax.json "$@"
fi

fx=$(cd "$root/.." && pwd)/shared/fixtures/yolov7-tiny
if [ ! -f "$fx/model.pt" ]; then
    echo "no fixture sample at $fx: run tools/main-job.sh WEIGHTS DATA [COCO_JSON]" >&2
    exit 2
fi
# batch 2 as the reference table was made (ref/table.json meta.batch)
"$q7" table --weights "$fx/model.pt" --data "$fx/data/val.txt" --batch 2 \
    --json table.json --save-amax amax.json
echo "reference (yolov7 + pytorch-quantization) for comparison: $fx/ref/table.json"
