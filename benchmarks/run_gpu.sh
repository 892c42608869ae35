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
#   p2  python -m benchmarks.inference_bench --model-size 7b (random Llama-2-7B shape, bf16, ~4 min)
#   p3  python -m benchmarks.train_bench --model-size 7b (LoRA SFT: `fireact train` vs alpaca-lora,
#       50 + 5 steps each; the random model is saved and read back by the trainer, ~3 min)
# Environment: PYTHON (default python3, the interpreter with torch there), BUDGET_S (seconds for
# the whole script, default 570: one device command may run 600 s), OUT (results folder).
# fireact is imported from src/ through PYTHONPATH; the device image has torch, transformers,
# tokenizers, accelerate and peft, which is all P2 needs. P3 runs `fireact train`, whose config
# needs pydantic, which the image lacks: run `bash benchmarks/gpu_wheels.sh` here first and add
# carry=[".whl"] to the device call; the wheels in .whl/ are installed into a scratch folder on
# PYTHONPATH (nothing else is installed). Without them P3 is skipped with that message.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

which=${1:-all}
case $which in all | p2 | p3) ;; *) echo "usage: $0 [all|p2|p3]" >&2 && exit 2 ;; esac
py=${PYTHON:-python3}
budget=${BUDGET_S:-570}
out=${OUT:-benchmarks/results}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

# carried wheels (benchmarks/gpu_wheels.sh: pydantic and what it needs, for P3)
if compgen -G ".whl/*.whl" >/dev/null; then
  site=${TMPDIR:-/tmp}/fireact-bench-site
  if "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .whl/*.whl; then
    export PYTHONPATH="$PYTHONPATH:$site"
    echo "installed the carried wheels into $site: $(cd .whl && echo *.whl)"
  else
    echo "could not install the carried wheels in .whl/" >&2
  fi
fi

host=$("$py" -c 'from benchmarks.common import host_kind; print(host_kind())') || exit 2
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
  timeout "$limit" "$py" -m benchmarks.inference_bench --model-size 7b \
    --out "$out/inference-$host.json" 2>&1 | tee "$out/inference-$host.log" || status=1
fi

# ---- P3: training (LoRA SFT of a random Llama-2-7B through `fireact train`, packing, vs
# alpaca-lora padding; 5 warm-up + 50 timed steps each; ~2-3 min with the tokenizer, the data, the
# model build and its 13.5 GB save and load). If P2 + P3 do not fit in one 10-minute device
# command, run `bash benchmarks/run_gpu.sh p3` on its own.
if [[ $which == all || $which == p3 ]]; then
  limit=$(left)
  echo "== P3 train_bench (limit ${limit} s)"
  if ! "$py" -c 'import pydantic' 2>/dev/null; then
    echo "P3: skipped: fireact train needs pydantic, not on this machine: run" \
      "'bash benchmarks/gpu_wheels.sh' where pip works and carry=[\".whl\"] in the device call"
    status=1
  elif ((limit < 180)); then
    echo "P3: only ${limit} s left: run 'bash benchmarks/run_gpu.sh p3' as its own command"
    status=1
  else
    timeout "$limit" "$py" -m benchmarks.train_bench --model-size 7b --steps 50 --warmup-steps 5 \
      --out "$out/train-$host.json" 2>&1 | tee "$out/train-$host.log" || status=1
  fi
fi

ls -l "$out"
exit $status
