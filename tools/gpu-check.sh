#!/usr/bin/env bash
# The one prepared check of q7's CUDA backend.
#
#   tools/gpu-check.sh pack     On a dev machine (Debian, packages of tools/setup.sh installed):
#                               gathers into .gpu/ what a bare GPU box lacks: cJSON, libyaml, stb
#                               (headers, libraries, pkg-config files, a pkg-config binary) and
#                               libturbojpeg, and the fixtures that fit a 64 MiB transfer
#                               (family/, yolov7-tiny's model, photos, horses input, raw
#                               outputs, amax.json, table.json; yolov7's 75 MB model.pt does not
#                               fit). Adds /.gpu/ to .git/info/exclude.
#   tools/gpu-check.sh          On the GPU machine, in a copy of the repo with .gpu/ carried along
#                               (device tool: carry [".gpu"], command "bash tools/gpu-check.sh"):
#                               configures and builds with CUDA (meson + ninja; if they or the
#                               dependencies are missing, the direct compile list below), runs
#                               test_cuda (the 'cuda' suite: kernels, histograms, fixtures end to
#                               end) and prints a benchmark table (yolov7 from its yaml at 640x640:
#                               images/s at batch 1, 8, 32 in FP32 and FP16, also with the
#                               tiled im2col, TFLOP/s, the 10 slowest nodes; tools/
#                               bench_conv_cuda: each step of the heaviest convs timed alone), then the same network in the machine's PyTorch
#                               (cuDNN, FP16, channels_last) beside `q7 bench --device cuda
#                               --fp16` (tools/bench_torch.py), then `q7 table` on yolov7-tiny's
#                               photos on the GPU and on the CPU, compared with each other and
#                               with ref/table.json, then compute-sanitizer memcheck and
#                               racecheck on the kernel tests when time allows. Log:
#                               $OUT/gpu-check.log when OUT is set. About 4-6 minutes; each step
#                               has a timeout and late steps are skipped, so the whole stays
#                               under 10. Q7_GPU_CHECK_QUICK=1 skips the table and
#                               racecheck; Q7_GPU_CHECK_WS=64,32 sets the conv workspace bounds
#                               (MiB) the benchmarks also try (default 64).
#                               Q7_GPU_CHECK_DIRECT=1 skips meson.
#   tools/gpu-check.sh emulate [outdir]
#                               On any machine with the CUDA headers, g++ and OpenBLAS, no GPU
#                               needed: builds the backend with its kernels compiled as C++
#                               against a CPU emulation of the CUDA runtime and cuBLAS
#                               (kernels/cuda/emu/) into outdir (build-cuda-emu) and runs
#                               test_cuda on it (~30 s build + ~40 s run on 2 cores): checks
#                               indexing, GEMM layout, executor logic, histograms and fixtures,
#                               not parallel behaviour or real cuBLAS. CC="cc -fsanitize=address"
#                               CXX="g++ -fsanitize=address" runs it under AddressSanitizer.
#
# Direct compile list (no meson), from the source lists of the meson.build files:
#   cc  -std=c11 -O2 -D_GNU_SOURCE -I. -I$CUDA/include <deps> -c  graph/ models/ quant/ kernels/
#       engine/ sources (not engine/exec_cuda_stub.c), tests/test_common.c, tests/test_cuda.c
#   nvcc -std=c++17 -O3 -fmad=false -gencode arch=compute_90,code=[sm_90,compute_90] -I. -c
#       kernels/cuda/*.cu
#   cc  *.o -o test_cuda -L$CUDA/lib64 -lcudart -lcublas -lstdc++ -lcjson -lyaml -lm -lpthread
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-check}
CUDA=${CUDA_HOME:-/usr/local/cuda}
JOBS=$(nproc 2>/dev/null || echo 4)
GPU=$ROOT/.gpu
FIX_SRC=${Q7_FIXTURES:-$ROOT/../shared/fixtures}

say() { printf '\n== %s\n' "$*"; }

# ---- pack (dev machine) ----
pack() {
    local lib=/usr/lib/x86_64-linux-gnu
    rm -rf "$GPU"
    mkdir -p "$GPU"/include "$GPU"/lib "$GPU"/pkgconfig "$GPU"/bin "$GPU"/fixtures || exit 1
    cp -r /usr/include/cjson /usr/include/stb /usr/include/yaml.h /usr/include/turbojpeg.h \
        "$GPU"/include/ || exit 1
    for l in libcjson.so.1 libyaml-0.so.2 libstb.so.0 libturbojpeg.so.0; do
        cp -L "$lib/$l" "$GPU"/lib/ || exit 1
    done
    ln -sf libcjson.so.1 "$GPU"/lib/libcjson.so
    ln -sf libyaml-0.so.2 "$GPU"/lib/libyaml.so
    ln -sf libstb.so.0 "$GPU"/lib/libstb.so
    ln -sf libturbojpeg.so.0 "$GPU"/lib/libturbojpeg.so
    cp -L /usr/bin/pkgconf "$GPU"/bin/pkgconf.bin && cp -L "$lib"/libpkgconf.so.3 "$GPU"/lib/
    cat >"$GPU"/bin/pkg-config <<'EOF'
#!/bin/sh
d=$(cd "$(dirname "$0")" && pwd)
LD_LIBRARY_PATH="$d/../lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$d/pkgconf.bin" "$@"
EOF
    chmod +x "$GPU"/bin/pkg-config
    pc() { # name version libs cflags
        printf 'prefix=${pcfiledir}/..\nName: %s\nDescription: %s (carried by gpu-check.sh)\nVersion: %s\nLibs: -L${prefix}/lib %s\nCflags: %s\n' \
            "$1" "$1" "$2" "$3" "$4" >"$GPU/pkgconfig/$1.pc"
    }
    pc libcjson 1.7.15 -lcjson '-I${prefix}/include -I${prefix}/include/cjson'
    pc yaml-0.1 0.2.5 -lyaml '-I${prefix}/include'
    pc stb 0.0 -lstb '-I${prefix}/include -I${prefix}/include/stb'
    pc libturbojpeg 2.1.5 -lturbojpeg '-I${prefix}/include'
    # fixtures: the family (every config, small), yolov7-tiny's model, photos and one input
    local f="$GPU"/fixtures
    mkdir -p "$f"/yolov7-tiny/ref || exit 1
    cp -r "$FIX_SRC"/family "$f"/ || exit 1
    cp "$FIX_SRC"/yolov7-tiny/model.pt "$f"/yolov7-tiny/ || exit 1
    cp -r "$FIX_SRC"/yolov7-tiny/data "$f"/yolov7-tiny/ || exit 1
    for r in input_horses raw_origin_horses raw_fused_horses raw_qdq-mse_horses; do
        cp "$FIX_SRC/yolov7-tiny/ref/$r.npy" "$f"/yolov7-tiny/ref/ || exit 1
    done
    cp "$FIX_SRC"/yolov7-tiny/ref/amax.json "$FIX_SRC"/yolov7-tiny/ref/table.json \
        "$f"/yolov7-tiny/ref/ || exit 1
    chmod -R u+w "$GPU"
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info && echo '/.gpu/' >>.git/info/exclude; }
    du -sh "$GPU"
    echo "device tool: run with carry [\".gpu\"] and command: bash tools/gpu-check.sh"
}

# ---- source lists (from the meson.build files, so that they follow the build) ----
meson_list() { # dir ext
    grep -o "'[^']*\.$2'" "$1/meson.build" | tr -d "'" | sed "s|^|$1/|"
}
c_sources() {
    # the ONNX exporter needs protoc-c's generated code: the direct build takes its stub
    for d in graph models quant kernels engine; do meson_list $d c; done |
        grep -v -e 'exec_cuda_stub\.c' -e 'onnx_export\.c' -e 'onnx\.pb-c\.c'
    echo tests/test_common.c
    echo tests/test_cuda.c
}
cu_sources() { meson_list kernels cu; }

# Runs "cmd src obj" for each source, JOBS at a time; returns non-zero if any failed.
compile_all() { # outdir cmd-function sources...
    local out=$1 fn=$2
    shift 2
    local pids=() fail=0 src obj
    for src in "$@"; do
        obj="$out/obj/$(echo "$src" | tr '/' '_').o"
        "$fn" "$src" "$obj" &
        pids+=($!)
        if [ ${#pids[@]} -ge "$JOBS" ]; then
            wait "${pids[0]}" || fail=1
            pids=("${pids[@]:1}")
        fi
    done
    for p in "${pids[@]}"; do wait "$p" || fail=1; done
    return $fail
}

DEP_CFLAGS=""
DEP_LIBS=""
CC=${CC:-cc}
CXX=${CXX:-g++}
cc_one() { $CC -std=c11 -O2 -D_GNU_SOURCE -ffp-contract=off -Wall -Wextra -Wno-unused-parameter \
    $BLAS_CFLAGS -I"$ROOT" -I"$CUDA"/include $DEP_CFLAGS -c "$1" -o "$2"; }
nvcc_one() { "$CUDA"/bin/nvcc -std=c++17 -O3 -fmad=false -gencode arch=compute_80,code=sm_80 \
    -gencode 'arch=compute_90,code=[sm_90,compute_90]' -I"$ROOT" -c "$1" -o "$2"; }
emu_one() { $CXX -x c++ -std=c++17 -O2 -ffp-contract=off -DQ7_CUDA_EMULATE -Wall -Wextra \
    -Wno-unused-parameter -I"$ROOT" -I"$CUDA"/include -c "$1" -o "$2"; }

dep_flags() {
    if pkg-config --exists libcjson yaml-0.1 2>/dev/null; then
        DEP_CFLAGS="$(pkg-config --cflags libcjson yaml-0.1)"
        DEP_LIBS="$(pkg-config --libs libcjson yaml-0.1)"
    elif [ -d "$GPU/include/cjson" ]; then
        DEP_CFLAGS="-I$GPU/include -I$GPU/include/cjson"
        DEP_LIBS="-L$GPU/lib -lcjson -lyaml -Wl,-rpath,$GPU/lib"
    else
        DEP_CFLAGS="-I/usr/include/cjson"
        DEP_LIBS="-lcjson -lyaml"
    fi
}

# Builds test_cuda into $1 without meson: real CUDA (emulate=0) or the CPU emulation (1).
direct_build() { # outdir emulate
    local out=$1 emu=$2
    rm -rf "$out"
    mkdir -p "$out"/obj || return 1
    dep_flags
    BLAS_CFLAGS=""
    local blas_libs="" extra
    local cblas=/usr/include/x86_64-linux-gnu/openblas-pthread
    if [ "$emu" = 1 ]; then
        [ -f $cblas/cblas.h ] || { echo "emulate needs OpenBLAS (libopenblas-dev)"; return 1; }
        BLAS_CFLAGS="-DQ7_HAVE_OPENBLAS=1 -I$cblas"
        blas_libs="-lopenblas"
    fi
    echo "compile lines:"
    echo "  $CC -std=c11 -O2 -D_GNU_SOURCE -ffp-contract=off $BLAS_CFLAGS -I. -I$CUDA/include $DEP_CFLAGS -c <each of $(c_sources | wc -l) C sources>"
    compile_all "$out" cc_one $(c_sources) || return 1
    if [ "$emu" = 1 ]; then
        echo "  $CXX -x c++ -std=c++17 -O2 -ffp-contract=off -DQ7_CUDA_EMULATE -I. -I$CUDA/include -c kernels/cuda/*.cu kernels/cuda/emu/runtime.c(as C)"
        compile_all "$out" emu_one $(cu_sources) || return 1
        compile_all "$out" cc_one kernels/cuda/emu/runtime.c || return 1
        extra="$blas_libs -lstdc++"
    else
        echo "  $CUDA/bin/nvcc -std=c++17 -O3 -fmad=false -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=[sm_90,compute_90] -I. -c kernels/cuda/*.cu"
        compile_all "$out" nvcc_one $(cu_sources) || return 1
        extra="-L$CUDA/lib64 -lcudart -lcublas -lstdc++ -Wl,-rpath,$CUDA/lib64"
    fi
    echo "  $CC obj/*.o -o test_cuda $extra $DEP_LIBS -lm -lpthread"
    $CC "$out"/obj/*.o -o "$out"/test_cuda $extra $DEP_LIBS -lm -lpthread
}

# The q7 command on the emulation (after direct_build "$1" 1): eval/ and tools/ compiled too.
emu_q7() { # outdir
    local out=$1 src objs=()
    local tools_src
    tools_src=$(meson_list tools c | grep -v -e bench_metrics -e bench_conv_cuda)
    local extra="-DQ7_HAVE_TURBOJPEG=1 -I/usr/include/stb"
    for src in $(meson_list eval c) $tools_src; do
        local obj="$out/obj/q7_$(echo "$src" | tr '/' '_').o"
        objs+=("$obj")
        $CC -std=c11 -O2 -D_GNU_SOURCE -ffp-contract=off -Wall -Wextra -Wno-unused-parameter \
            $extra -I"$ROOT" -I"$CUDA"/include $DEP_CFLAGS -c "$src" -o "$obj" || return 1
    done
    $CC $(ls "$out"/obj/*.o | grep -v -e '/tests_' -e '/q7_') "${objs[@]}" -o "$out"/q7 \
        -lopenblas -lstdc++ $DEP_LIBS -lstb -lturbojpeg -lm -lpthread
}

emulate() { # [outdir]
    local out=${1:-$ROOT/build-cuda-emu}
    say "CPU emulation build (kernels as C++, emulated CUDA runtime and cuBLAS) in $out"
    direct_build "$out" 1 || { echo "emulation build failed"; exit 1; }
    say "test_cuda on the emulation"
    Q7_FIXTURES=$FIX_SRC "$out"/test_cuda || exit 1
    # the q7 command's CUDA paths: calibration with device histograms against the CPU's, the
    # table, the bench (tiny inputs: the emulation is slow)
    local tiny="$FIX_SRC/yolov7-tiny"
    [ -f "$tiny/data/val.txt" ] || return 0
    say "q7 --device cuda on the emulation (yolov7-tiny, 2 photos at 320)"
    emu_q7 "$out" || { echo "q7 emulation build failed"; exit 1; }
    local t
    t=$(mktemp -d) || exit 1
    # calib on one batch of 2 (with more batches the histogram's growth turns a 1e-5 max
    # difference into a whole bin), eval on 3 batches of 1. A percentile amax is a bin edge:
    # two summation orders (the CPU's is PyTorch's oneDNN order, the emulated cuBLAS is
    # OpenBLAS') can move it by a bin or two, 5e-4 to 1e-3 of it here, hence 2e-3 below
    head -2 "$tiny/data/val.txt" | sed "s|^\./|$tiny/data/|" >"$t/val.txt"
    local common=(--weights "$tiny/model.pt" --data "$t/val.txt" --batch 2 --img 320 --threads 2)
    "$out"/q7 calib "${common[@]}" --device cuda --all-methods -o "$t/cuda.json" &&
        "$out"/q7 calib "${common[@]}" --all-methods -o "$t/cpu.json" || exit 1
    python3 - "$t/cuda.json" "$t/cpu.json" <<'PY' || exit 1
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ok = True
for m in b:  # activations differ by summation order only (emulated cuBLAS vs q7's CPU GEMM)
    worst = max(abs(a[m][k] - v) / max(abs(v), 1e-12)
                for k, v in b[m].items() if k.endswith("_input_quantizer"))
    strict = m == "max" or m.startswith("percentile")
    ok &= worst < 2e-3 or not strict
    print("q7 calib --device cuda vs cpu, %-17s input amax within %.2e relative%s" %
          (m + ":", worst, " (tolerance 2e-3)" if strict else " (a flat objective: reported)"))
sys.exit(0 if ok else 1)
PY
    # eval through the CUDA runner's pipeline (submit + wait, 3 batches of 1) against the CPU
    head -3 "$tiny/data/val.txt" | sed "s|^\./|$tiny/data/|" >"$t/val3.txt"
    local ev=(--weights "$tiny/model.pt" --data "$t/val3.txt" --batch 1 --img 320 --threads 2)
    "$out"/q7 eval "${ev[@]}" --device cuda --json "$t/eval-cuda.json" >/dev/null &&
        "$out"/q7 eval "${ev[@]}" --json "$t/eval-cpu.json" >/dev/null || exit 1
    python3 - "$t/eval-cuda.json" "$t/eval-cpu.json" <<'PY' || exit 1
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
d = max(abs(a[k] - b[k]) for k in ("P", "R", "mAP50", "mAP50_95"))
print("q7 eval --device cuda (pipelined) vs cpu, 3 batches: largest difference %.2e "
      "(tolerance 0.002)" % d)
sys.exit(0 if d <= 0.002 and a["images"] == b["images"] == 3 else 1)
PY
    "$out"/q7 table "${common[@]}" --device cuda --methods max,mse --json "$t/table.json" &&
        "$out"/q7 bench --weights "$tiny/model.pt" --img 320 --device cuda --iters 1 --top 3 &&
        "$out"/q7 bench --weights "$tiny/model.pt" --img 320 --device cuda --fp16 --iters 1 \
            --top 3 || exit 1
    rm -rf "$t"
}

# ---- check (GPU machine) ----
check() {
    if [ -n "${OUT:-}" ]; then
        mkdir -p "$OUT"
        exec > >(tee "$OUT/gpu-check.log") 2>&1
    fi
    local t0=$SECONDS
    if [ ! -x "$CUDA/bin/nvcc" ] && command -v nvcc >/dev/null; then
        CUDA=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
    fi
    export PATH="$CUDA/bin:$PATH"
    export LIBRARY_PATH="$CUDA/lib64${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="$CUDA/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if [ -d "$GPU" ]; then
        export PKG_CONFIG_PATH="$GPU/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
        export LD_LIBRARY_PATH="$GPU/lib:$LD_LIBRARY_PATH"
        command -v pkg-config >/dev/null || export PATH="$PATH:$GPU/bin"
        [ -d "$GPU/fixtures" ] && FIX_SRC=$GPU/fixtures
    fi
    export Q7_FIXTURES=$FIX_SRC
    # meson's tests read ../shared/fixtures beside the source tree
    if [ ! -e "$ROOT/../shared/fixtures" ] && [ -d "$FIX_SRC" ]; then
        mkdir -p "$ROOT/../shared" && ln -s "$FIX_SRC" "$ROOT/../shared/fixtures"
    fi
    say "machine"
    uname -m
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | head -3
    nvcc --version | tail -2
    echo "fixtures: $FIX_SRC"

    local bin="" meson_cmd=""
    if command -v meson >/dev/null; then
        meson_cmd=meson
    elif python3 -c 'import mesonbuild' 2>/dev/null; then
        meson_cmd="python3 -m mesonbuild.mesonmain"
    fi
    if ! command -v ninja >/dev/null; then
        local nb
        nb=$(python3 -c 'import ninja, os; print(ninja.BIN_DIR)' 2>/dev/null) && export PATH="$PATH:$nb"
    fi
    if [ -n "${Q7_GPU_CHECK_DIRECT:-}" ]; then
        echo "Q7_GPU_CHECK_DIRECT set: direct compile list"
    elif [ -n "$meson_cmd" ] && command -v ninja >/dev/null; then
        say "meson build ($meson_cmd, ninja $(ninja --version))"
        rm -rf build-cuda-gpu
        if timeout 120 $meson_cmd setup build-cuda-gpu --buildtype=release -Dcuda=enabled -Dblas=disabled \
            -Donnx=disabled -Dsleef=auto > /tmp/q7-meson-setup.log 2>&1 &&
            timeout 300 ninja -C build-cuda-gpu tests/test_cuda tools/q7 tools/bench_conv_cuda; then
            bin=build-cuda-gpu/tests/test_cuda
        else
            tail -30 /tmp/q7-meson-setup.log 2>/dev/null
            echo "meson build failed: falling back to the direct compile list"
        fi
    else
        echo "no meson/ninja here: direct compile list"
    fi
    if [ -z "$bin" ]; then
        say "direct build"
        export -f direct_build compile_all cc_one nvcc_one emu_one dep_flags c_sources cu_sources \
            meson_list
        export ROOT CUDA JOBS GPU CC CXX
        if timeout 400 bash -c 'direct_build build-cuda-direct 0'; then
            bin=build-cuda-direct/test_cuda
        else
            echo "BUILD FAILED"
            exit 1
        fi
    fi
    echo "built in $((SECONDS - t0)) s"

    local rc_test=0
    say "test_cuda (suite cuda: kernels, histograms, fixtures end to end)"
    if [ -f build-cuda-gpu/build.ninja ] && [ "$bin" = build-cuda-gpu/tests/test_cuda ]; then
        timeout 420 $meson_cmd test -C build-cuda-gpu --suite cuda --no-rebuild --verbose || rc_test=$?
    else
        timeout 420 "$bin" || rc_test=$?
    fi
    echo "test_cuda exit code: $rc_test (0 pass, 77 skip)"

    say "benchmark"
    local cfg="$FIX_SRC/family/cfg/training/yolov7.yaml"
    if [ -f "$cfg" ]; then
        timeout 240 "$bin" bench "$cfg" 640 1,8,32 "${Q7_GPU_CHECK_WS:-64}" ||
            echo "benchmark exit code $?"
    else
        echo "no $cfg: benchmark skipped"
    fi
    if [ -x build-cuda-gpu/tools/bench_conv_cuda ]; then
        say "where the convolutions' time goes (tools/bench_conv_cuda.c), batch 8"
        timeout 90 build-cuda-gpu/tools/bench_conv_cuda 8 20 "0,${Q7_GPU_CHECK_WS:-64}" ||
            echo "bench_conv_cuda exit code $?"
    fi
    local q7=build-cuda-gpu/tools/q7
    if [ -x "$q7" ] && [ -f "$cfg" ] && python3 -c 'import torch' 2>/dev/null; then
        say "PyTorch (cuDNN, FP16, channels_last) beside q7 --fp16, yolov7 from its yaml"
        timeout 180 python3 tools/bench_torch.py --cfg "$cfg" --q7 "$q7" --device cuda --fp16 \
            --channels-last --batch 1,32 --iters 20 || echo "bench_torch exit code $?"
        say "q7 bench --device cuda --fp16 --batch 32 (per layer: time, GFLOP/s, GB/s)"
        timeout 60 "$q7" bench --cfg "$cfg" --device cuda --fp16 --batch 32 --iters 10 --top 12 ||
            echo "q7 bench exit code $?"
    else
        echo "(no q7 binary, yolov7.yaml or PyTorch: PyTorch comparison skipped)"
    fi
    local tiny="$FIX_SRC/yolov7-tiny"
    if [ -n "${Q7_GPU_CHECK_QUICK:-}" ]; then
        echo "(Q7_GPU_CHECK_QUICK: the table and racecheck skipped)"
    elif [ -x "$q7" ] && [ -f "$tiny/data/val.txt" ] && [ $((SECONDS - t0)) -lt 400 ]; then
        say "q7 table on yolov7-tiny's photos: cuda vs cpu vs ref/table.json"
        local d
        for d in cuda cpu; do
            timeout 120 "$q7" table --weights "$tiny/model.pt" --data "$tiny/data/val.txt" \
                --batch 2 --device $d --json /tmp/q7-table-$d.json || echo "table $d exit code $?"
        done
        python3 - "$tiny/ref/table.json" <<'PY' || echo "table comparison exit code $?"
import json, sys
ref = json.load(open(sys.argv[1]))
cu, cp = (json.load(open("/tmp/q7-table-%s.json" % d)) for d in ("cuda", "cpu"))
cu, cp, ref = cu["table"], cp["table"], ref["table"]
keys = ("mAP50", "mAP50_95")
worst = {}
print("%-24s %-9s %9s %9s %9s" % ("row", "metric", "cuda", "cpu", "ref"))
for name in cp:
    for k in keys:
        a, b = cu[name][k], cp[name][k]
        r = ref.get(name, {}).get(k, float("nan"))
        print("%-24s %-9s %9.4f %9.4f %9.4f" % (name, k, a, b, r))
        if name in ("origin", "fused"):
            worst[name] = max(worst.get(name, 0), abs(a - b))
print("cuda vs cpu, largest difference: " +
      ", ".join("%s %.4f" % kv for kv in worst.items()) + " (tolerance 0.002)")
sys.exit(0 if worst and max(worst.values()) <= 0.002 else 1)
PY
    fi
    # device memory errors and shared-memory races in the kernels (kernel tests only: slow)
    local san="$CUDA/bin/compute-sanitizer"
    if [ -x "$san" ] && [ $((SECONDS - t0)) -lt 420 ]; then
        say "compute-sanitizer memcheck, kernel tests"
        timeout 120 "$san" --tool memcheck --error-exitcode 3 "$bin" kernels 2>&1 | tail -25
        echo "memcheck exit code ${PIPESTATUS[0]}"
        if [ -z "${Q7_GPU_CHECK_QUICK:-}" ] && [ $((SECONDS - t0)) -lt 480 ]; then
            say "compute-sanitizer racecheck, kernel tests"
            timeout 90 "$san" --tool racecheck --error-exitcode 3 "$bin" kernels 2>&1 | tail -15
            echo "racecheck exit code ${PIPESTATUS[0]}"
        fi
    fi
    say "done in $((SECONDS - t0)) s"
    exit $rc_test
}

case "$MODE" in
pack) pack ;;
emulate) emulate "${2:-}" ;;
check) check ;;
*)
    echo "usage: tools/gpu-check.sh [pack|emulate]" >&2
    exit 2
    ;;
esac
