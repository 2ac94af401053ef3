#!/usr/bin/env bash
# Issue 13's GPU measurements at Mistral-7B shape, on the lent device, in stages that each fit
# one call (docs/training.md "On the GPU (7B shape)", docs/evaluation.md).
#   bash benchmarks/gpu_issue13.sh install   # each call that carries .mlxcuda-a/-b and .whl
#   bash benchmarks/gpu_issue13.sh train     # train_benchmark on Alpaca lengths + host_time
#   bash benchmarks/gpu_issue13.sh long      # the same on ~1,000-token rows, + step_profile (MFU)
#   bash benchmarks/gpu_issue13.sh alone     # train_benchmark, each arm alone (long, Alpaca)
#   bash benchmarks/gpu_issue13.sh packed    # Alpaca: ours packed vs mlx_lm padded, each alone
#   bash benchmarks/gpu_issue13.sh async     # when async_eval returns, under MLX_MAX_OPS_PER_BUFFER
#   bash benchmarks/gpu_issue13.sh why       # packed rows' layer under its mask; metrics' cost alone
#   bash benchmarks/gpu_issue13.sh host      # host_time alone (Alpaca, long rows)
#   bash benchmarks/gpu_issue13.sh layers    # one decoder layer's parts, forward vs backward
#   bash benchmarks/gpu_issue13.sh knobs     # step_profile under MLX-CUDA's graph settings
#   bash benchmarks/gpu_issue13.sh generate  # generation: batch 1 x3 vs the loop; 16 to 64
#   bash benchmarks/gpu_issue13.sh all       # generate, train, long (logs land as each ends)
# Inputs travel in the git-ignored .bench7b (made here: benchmarks/long_examples.py and
#   prepare_model('random://mistral-7b?weights=false', .bench7b/mistral-7b, dtype='bfloat16')
#   with the GPU check's data stage output in .bench7b/alpaca); the four wheels the code needs
#   beyond the image (jsonschema, jsonschema-specifications, referencing, rpds-py) in .whl.
#   BENCH_DIR (default .bench7b) points at another such folder, e.g. a tiny model for a dry
#   run on the CPU (install skipped: BENCH_ENV=/dev/null).
# Results go to $OUT: one JSON per step and one log.
set -euo pipefail
out=${OUT:-/tmp/out}
mkdir -p "$out"
bench=${BENCH_DIR:-.bench7b}
model=$bench/mistral-7b
env=${BENCH_ENV:-/tmp/device-env.sh}
step() {  # step NAME COMMAND...: appended to $out/log; a failure does not stop the stage
  local name=$1
  shift
  echo "=== $name" | tee -a "$out/log"
  "$@" 2>&1 | tee -a "$out/log" || echo "gpu_issue13.sh: $name failed (exit $?)" | tee -a "$out/log"
}
stage=${1:?stage: install, train, long, alone, packed, async, why, layers, knobs, host, generate or all}
if [ "$stage" = all ]; then
  bash "$0" generate
  bash "$0" train
  exec bash "$0" long
fi
# 20 steps, 5 left out; two interleaved rounds. Alpaca (192 rows, 24 micro-batches of 8 in
# 7 padded widths) times its second epoch instead: 20 steps left new widths compiling inside
# the timed ones (0.5-1.8 s steps among 0.1 s ones, docs/training.md).
common=(--model "$model" --max-seq-len 1024 --rank 32 --alpha 16 --steps 20 --warmup 5
  --rounds 2 --arms mlx_lm,ours)
second_epoch=(--steps 48 --warmup 24)
case $stage in
install)
  bash tools/device/install.sh
  if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl
  fi
  ;;
train)
  source "$env"
  step train_alpaca python benchmarks/train_benchmark.py "${common[@]}" "${second_epoch[@]}" \
    --data "$bench/alpaca" --micro-batch 8 --json "$out/train_alpaca.json"
  step host_time python benchmarks/host_time.py --model "$model" --data "$bench/alpaca" \
    --micro-batch 8 --steps 32 --warmup 24 --json "$out/host_time.json"
  ;;
long)
  source "$env"
  step train_long python benchmarks/train_benchmark.py "${common[@]}" --data "$bench/long" \
    --micro-batch 4 --json "$out/train_long.json"
  step step_profile python benchmarks/step_profile.py --model "$model" --data "$bench/long" \
    --micro-batch 4 --json "$out/step_profile.json"
  step host_time_long python benchmarks/host_time.py --model "$model" --data "$bench/long" \
    --micro-batch 4 --steps 10 --warmup 3 --json "$out/host_time_long.json"
  ;;
alone)  # each arm alone only (no interleaved rounds), long rows then Alpaca
  source "$env"
  step alone_long python benchmarks/train_benchmark.py "${common[@]}" --rounds 0 \
    --data "$bench/long" --micro-batch 4 --json "$out/alone_long.json"
  step alone_alpaca python benchmarks/train_benchmark.py "${common[@]}" "${second_epoch[@]}" \
    --rounds 0 --data "$bench/alpaca" --micro-batch 8 --json "$out/alone_alpaca.json"
  ;;
packed)  # Alpaca packed into rows of 1,024 (ours) vs padded (mlx_lm), each arm alone: a packed
  # row holds ~10.7 examples, so 1 row vs 8 examples and 2 rows vs 16 feed the GEMMs alike.
  source "$env"
  step packed_alpaca8 python benchmarks/train_benchmark.py "${common[@]}" "${second_epoch[@]}" \
    --rounds 0 --data "$bench/alpaca" --micro-batch 8 --packed-micro-batch 1 \
    --arms mlx_lm,ours,ours-packed --json "$out/packed_alpaca8.json"
  step packed_alpaca16 python benchmarks/train_benchmark.py "${common[@]}" --steps 24 \
    --warmup 12 --rounds 0 --data "$bench/alpaca" --micro-batch 16 --packed-micro-batch 2 \
    --arms mlx_lm,ours-packed --json "$out/packed_alpaca16.json"
  ;;
async)  # the overlap's premise: does async_eval return before the device is done? (~30 s)
  source "$env"
  for ops in "" 100 1000 10000; do
    step "async_ops${ops:-default}" env ${ops:+MLX_MAX_OPS_PER_BUFFER=$ops} python \
      benchmarks/async_return.py --ops 2000 --json "$out/async_ops${ops:-default}.json"
  done
  ;;
why)  # a packed step's token costs 1.4x a long row's: the layer under the block mask; and
  # ours' Alpaca steps 0.19 s vs mlx_lm's 0.16 s: ours-bare (per-layer metrics off) alone.
  source "$env"
  step layers_packed python benchmarks/layer_profile.py --model "$model" --batch 2 \
    --seq-len 1024 --parts block,block-packed,sdpa,sdpa-packed,sdpa-packed-additive \
    --json "$out/layers_packed.json"
  step bare_alpaca python benchmarks/train_benchmark.py "${common[@]}" "${second_epoch[@]}" \
    --rounds 0 --data "$bench/alpaca" --micro-batch 8 --arms mlx_lm,ours,ours-bare \
    --json "$out/bare_alpaca.json"
  ;;
layers)  # where the backward's time goes: long rows' and Alpaca's widest shapes
  source "$env"
  step layers_long python benchmarks/layer_profile.py --model "$model" --batch 4 \
    --seq-len 1024 --json "$out/layers_long.json"
  step layers_alpaca python benchmarks/layer_profile.py --model "$model" --batch 8 \
    --seq-len 288 --json "$out/layers_alpaca.json"
  ;;
knobs)  # one step under MLX-CUDA's graph knobs (env vars read by libmlx): long rows
  source "$env"
  for knob in "" MLX_CUDA_GRAPH_CACHE_SIZE=4000 MLX_USE_CUDA_GRAPHS=0; do
    name=knobs_${knob// /_}
    step "$name" env MLX_ENABLE_CACHE_THRASHING_CHECK=1 $knob python benchmarks/step_profile.py \
      --model "$model" --data "$bench/long" --micro-batch 4 --variants forward,mlx_lm-step,ours \
      --json "$out/${name//=/-}.json"
  done
  step profile_alpaca python benchmarks/step_profile.py --model "$model" --data "$bench/alpaca" \
    --micro-batch 8 --variants forward,mlx_lm-step,ours,one-graph,f32-head \
    --json "$out/step_profile_alpaca.json"
  ;;
host)
  source "$env"
  step host_time python benchmarks/host_time.py --model "$model" --data "$bench/alpaca" \
    --micro-batch 8 --steps 32 --warmup 24 --json "$out/host_time.json"
  step host_time_long python benchmarks/host_time.py --model "$model" --data "$bench/long" \
    --micro-batch 4 --steps 10 --warmup 3 --json "$out/host_time_long.json"
  ;;
generate)
  source "$env"
  step gen_b1 python benchmarks/generation_benchmark.py --model "$model" --prompts 8 \
    --max-tokens 64 --batch-sizes 1 --repeats 3 --loglik-items 0 --json "$out/gen_b1.json"
  # 128 prompts x 128 tokens, 3 repeats: at 64 x 64 a batch-32 run lasted ~2 s and the
  # batch-32 / batch-16 ratio moved 1.5-2.4x between runs (docs/evaluation.md).
  step gen_large python benchmarks/generation_benchmark.py --model "$model" --prompts 128 \
    --peer-prompts 8 --max-tokens 128 --batch-sizes 16 32 64 --repeats 3 --loglik-items 0 \
    --json "$out/gen_large.json"
  ;;
*)
  echo "gpu_issue13.sh: stage must be install, train, long, alone, packed, async, why, layers, knobs, host, generate or all, got $1" >&2
  exit 2
  ;;
esac
