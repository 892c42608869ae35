#!/usr/bin/env bash
# The GPU benchmarks in one command, meant for the lent H100 (the session's device tool runs it in
# a copy of this repository; what it writes under $OUT comes back). From a session:
#
#   run(command="bash benchmarks/run_gpu.sh", kind="nvidia-h100-x1", timeout_s=600)
#
# then copy the returned inference-*.json (and train-*.json) from the reply's files_at folder into
# benchmarks/results/. Anywhere else with a CUDA GPU: `bash benchmarks/run_gpu.sh` writes into
# benchmarks/results/ directly.
#
# Usage: bash benchmarks/run_gpu.sh [all|p2|p3]   (default: all)
#   p2  benchmarks/inference_bench.py --model-size 7b (random Llama-2-7B shape, bf16, ~4 min)
#   p3  benchmarks/train_bench.py --model-size 7b (LoRA SFT, ours vs alpaca-lora, 50 + 5 steps, ~2 min)
# Environment: PYTHON (default python3, the interpreter with torch there), BUDGET_S (seconds for
# the whole script, default 570: one device command may run 600 s), OUT (results folder).
# Nothing is installed: fireact is imported from src/ through PYTHONPATH; the device image has
# torch, transformers, tokenizers, accelerate and peft.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

which=${1:-all}
case $which in all | p2 | p3) ;; *) echo "usage: $0 [all|p2|p3]" >&2 && exit 2 ;; esac
py=${PYTHON:-python3}
budget=${BUDGET_S:-570}
out=${OUT:-benchmarks/results}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

host=$("$py" -c 'import sys; sys.path.insert(0, "benchmarks"); from common import host_kind; print(host_kind())') || exit 2
echo "host kind: $host; results in $out"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.sm,clocks.mem \
  --format=csv | tee "$out/gpu-$host.txt"
"$py" -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, "gpu", torch.cuda.get_device_name() if torch.cuda.is_available() else None)'

left() { echo $((budget - SECONDS)); }
status=0

# ---- P2: local inference (HFLLM batched vs one prompt at a time, decode sweep, roofline)
if [[ $which == all || $which == p2 ]]; then
  limit=$(left)
  ((limit > 420)) && limit=420 # leave the rest of the budget to P3
  echo "== P2 inference_bench (limit ${limit} s)"
  timeout "$limit" "$py" benchmarks/inference_bench.py --model-size 7b \
    --out "$out/inference-$host.json" 2>&1 | tee "$out/inference-$host.log" || status=1
fi

# ---- P3: training (LoRA SFT of a random Llama-2-7B, fireact packing vs alpaca-lora padding,
# 5 warm-up + 50 timed steps each; ~1-2 min with the tokenizer, data and model build). If P2 + P3
# do not fit in one 10-minute device command, run `bash benchmarks/run_gpu.sh p3` on its own.
if [[ $which == all || $which == p3 ]]; then
  if [[ -f benchmarks/train_bench.py ]]; then
    limit=$(left)
    echo "== P3 train_bench (limit ${limit} s)"
    if ((limit < 150)); then
      echo "P3: only ${limit} s left: run 'bash benchmarks/run_gpu.sh p3' as its own command"
      status=1
    else
      timeout "$limit" "$py" benchmarks/train_bench.py --model-size 7b --steps 50 --warmup-steps 5 \
        --out "$out/train-$host.json" 2>&1 | tee "$out/train-$host.log" || status=1
    fi
  else
    echo "== P3: benchmarks/train_bench.py not there yet: skipped"
  fi
fi

ls -l "$out"
exit $status
