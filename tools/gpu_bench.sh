#!/usr/bin/env bash
# One device call: the CUDA engine benchmark of the shipped model (its own errors on a real clip)
# and of random models (latency at the paper's clip size). Session 42 ran the random cases only
# (docs/benchmarks.md, "Inference engines (CUDA)"); the trained model's GPU errors, and the torch
# engine the node builds with `precision: auto` (fp16), were left for this call. Since session 46
# that torch engine captures a CUDA graph on its first clip: its row names the engine ("torch (cuda,
# fp16, CUDA graph)", or no graph where capture failed or disagreed with eager, which it logs) and
# gives its errors against the eager fp32 reference, the first check of that path on a GPU.
#   run: command `bash tools/gpu_bench.sh`, timeout_s 300, no carry: the tracked weights travel with
#   the tree (57 MB of the call's 64 MiB), and the device's image has torch, OpenCV, ONNX Runtime,
#   safetensors and einops. Then copy $OUT's engines-trained-cuda.json / engines-cuda.json into
#   docs/benchmarks/ and its benchmarks.md sections into docs/benchmarks.md.
#   After `gpu_session_prepare.sh` has parked the weights, run it as `MODEL=.gpum/fourds_default bash
#   tools/gpu_bench.sh` with carry .gpum, so that the bench, setup and train calls follow one another on
#   one warm machine (a prepare between the bench and setup let the machine go: a second start).
# DEVICE=cpu runs the same calls on the CPU (a dry run of this script; CASES to keep it short).
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
DEVICE=${DEVICE:-cuda}
OUT=${OUT:?set OUT (the device tool sets it)}
CASES=${CASES:-S@8x128x128 S@16x224x224 B@16x224x224}
cp docs/benchmarks.md "$OUT/benchmarks.md"
if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > "$OUT/gpu.txt"
fi
# The device's image has no transforms3d (nor the other training wheels): fail at once, not after the start.
python3 -c 'import fourds_ros.bench.engines' || { echo "fourds_ros.bench.engines does not import here"; exit 2; }
MODEL=${MODEL:-models/fourds_default}
[ -s "$MODEL/model.safetensors" ] || echo "no trained weights in $MODEL (parked? MODEL=.gpum/fourds_default): step 1 fails"
bench() {
  # H100 / H200 SXM: 989 dense bf16 TFLOP/s. The whole log is kept in $OUT (the skip reasons and the
  # CUDA graph's capture warnings are in it, not in the JSON); its tail is shown.
  local name=$1
  shift
  timeout "${STEP_TIMEOUT:-130}" python3 -m fourds_ros bench engines --device "$DEVICE" \
    --peak-tflops "${PEAK_TFLOPS:-989}" --json-dir "$OUT" --markdown "$OUT/benchmarks.md" "$@" 2>&1 \
    | tee "$OUT/engines-$name.log" | tail -25
}
# Each step whatever the other did (the random cases need no weights); the status is the worse one's.
bench trained --model "$MODEL"
trained=$?
# shellcheck disable=SC2086
bench random --cases $CASES
random=$?
echo "step status: trained $trained, random $random"
exit $(( trained > random ? trained : random ))
