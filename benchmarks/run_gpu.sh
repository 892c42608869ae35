#!/usr/bin/env bash
# The GPU benchmarks in one command that fits one 10-minute device call, meant for the lent H100/H200
# (the session's device tool runs it in a copy of this repository; what it writes under $OUT
# comes back). From a session, after `bash benchmarks/gpu_wheels.sh` here:
#
#   run(command="bash benchmarks/run_gpu.sh", timeout_s=600, carry=[".whl"])
#
# (no kind named: the kind this task is lent, an H100 or an H200)
#
# then copy the returned train-*.json and inference-*.json from the reply's files_at folder into
# benchmarks/results/. Anywhere else with a CUDA GPU, `bash benchmarks/run_gpu.sh` writes into
# benchmarks/results/ directly.
#
# Usage: bash benchmarks/run_gpu.sh [all|p3|p2|summary]   (default: all)
#   p3  python -m benchmarks.train_bench --model-size 7b: LoRA SFT of a random Llama-2-7B shape,
#       `fireact train` and its variants vs FireAct's trainer (its default configurations)
#   p2  python -m benchmarks.inference_bench --model-size 7b: the hf backend batched (eager and
#       compiled) vs one prompt at a time, the decode sweep, the roofline
#   summary  only the last line: which results files $OUT holds and what each has measured
# `all` runs P3 first, limited to P3_S seconds (default 280), then P2 in what is left. P3 goes
# first because it needs more fixed time before its first figure (the tokenizer, the 7B model
# built, saved (13.5 GB) and loaded) and its headline pair (ours, baseline) comes first; P2's
# headline (ours, baseline) comes within its first minute, so P2 loses least when cut short.
# Each benchmark rewrites its JSON after every configuration (atomically, straight into $OUT), so
# a limit keeps what was measured: a stopped benchmark gets SIGINT, then SIGKILL 20 s later.
#
# Environment: PYTHON (default python3, the interpreter with torch there), BUDGET_S (seconds for
# the whole script, default 570: one device command may run 600), P3_S, OUT (results folder).
# fireact is imported from src/ (PYTHONPATH). The image lacks some packages the benchmarks need
# (benchmarks/device_wheels.txt: pydantic for `fireact train`'s config, liger-kernel for P3's
# use_liger_kernel); gpu_wheels.sh downloads them into .whl/, and this script installs whatever
# .whl/ holds with `pip install --target` into a scratch folder on PYTHONPATH (nothing else is
# installed). Without pydantic P3 and P2's ours-runner row are skipped, saying so.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

which=${1:-all}
case $which in all | p2 | p3 | summary) ;; *) echo "usage: $0 [all|p3|p2|summary]" >&2 && exit 2 ;; esac
py=${PYTHON:-python3}
budget=${BUDGET_S:-570}
p3_share=${P3_S:-280}
grace=25 # SIGINT, up to 20 s to stop, then SIGKILL; the summary
out=${OUT:-benchmarks/results}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
host=$("$py" -c 'from benchmarks.common import host_kind; print(host_kind())') || exit 2

# one line: each results file this run is for, and the configurations it holds
summary() {
  local files=()
  [[ $which == p2 ]] || files+=("train-$host.json")
  [[ $which == p3 ]] || files+=("inference-$host.json")
  "$py" - "$out" "${files[@]}" <<'EOF'
import json, sys
from pathlib import Path

parts = []
for name in sys.argv[2:]:
    path = Path(sys.argv[1]) / name
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        parts.append(f"{name}: missing")
        continue
    except ValueError as err:
        parts.append(f"{name}: unreadable ({err})")
        continue
    progress = doc.get("progress") or {}
    done = progress.get("done") or doc.get("configurations_done") or []
    errors = [r["system"] for r in doc.get("rows", []) if isinstance(r, dict) and "error" in r]
    text = f"{name}: {len(done)} done ({', '.join(done) or 'setup only'})"
    text += f", failed: {', '.join(errors)}" if errors else ""
    text += {True: ", complete", False: ", not complete"}.get(progress.get("complete"), "")
    parts.append(text)
print(f"summary ({sys.argv[1]}): " + "; ".join(parts))
EOF
}
if [[ $which == summary ]]; then
  summary
  exit 0
fi

# the carried wheels (benchmarks/gpu_wheels.sh)
if compgen -G ".whl/*.whl" >/dev/null; then
  site=${TMPDIR:-/tmp}/fireact-bench-site
  rm -rf "$site"
  if "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .whl/*.whl; then
    export PYTHONPATH="$PYTHONPATH:$site"
    echo "installed the carried wheels into $site: $(cd .whl && echo *.whl)"
  else
    echo "could not install the carried wheels in .whl/" >&2
  fi
else
  echo "no carried wheels (.whl/): P3 and P2's ours-runner need them (bash benchmarks/gpu_wheels.sh, carry=[\".whl\"])"
fi

echo "host kind: $host; results in $out"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.sm,clocks.mem \
    --format=csv | tee "$out/gpu-$host.txt"
fi
"$py" - <<'EOF' || exit 2
import importlib
import sys
from importlib.metadata import version

import torch

gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
print(f"torch {torch.__version__} cuda {torch.version.cuda} gpu {gpu}")
for name, dist in [("transformers", "transformers"), ("peft", "peft"), ("accelerate", "accelerate"),
                   ("pydantic", "pydantic"), ("liger_kernel.transformers", "liger-kernel")]:
    try:
        importlib.import_module(name)
        print(f"  {dist} {version(dist)}")
    except Exception as err:
        print(f"  {dist}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
if gpu is None:  # the 7b models do not fit a CPU machine's memory
    sys.exit("run_gpu.sh: no CUDA GPU here (torch.cuda.is_available() is False); the 7b runs need one")
EOF

left() { echo $((budget - SECONDS - grace)); }
status=0
run_limited() { # NAME LIMIT MODULE ARGS...: the benchmark, its output kept in $out/NAME-$host.log
  local name=$1 limit=$2 module=$3
  shift 3
  echo "== $module (limit ${limit} s)"
  timeout -s INT -k 20 "$limit" "$py" -m "$module" --model-size 7b \
    --out "$out/$name-$host.json" "$@" 2>&1 | tee "$out/$name-$host.log" || status=1
}

# ---- P3: training (its default configurations for 7b; the JSON rewritten after each)
if [[ $which == all || $which == p3 ]]; then
  limit=$(left)
  [[ $which == all ]] && ((limit > p3_share)) && limit=$p3_share
  if ! "$py" -c 'import pydantic' 2>/dev/null; then
    echo "P3: skipped: fireact train needs pydantic, not on this machine: run" \
      "'bash benchmarks/gpu_wheels.sh' where pip works and carry=[\".whl\"] in the device call"
    status=1
  elif ((limit < 180)); then
    echo "P3: only ${limit} s left: run 'bash benchmarks/run_gpu.sh p3' as its own command"
    status=1
  else
    run_limited train "$limit" benchmarks.train_bench
  fi
fi

# ---- P2: local inference (the JSON rewritten after each system and sweep point)
if [[ $which == all || $which == p2 ]]; then
  limit=$(left)
  if ((limit < 60)); then
    echo "P2: only ${limit} s left: run 'bash benchmarks/run_gpu.sh p2' as its own command"
    status=1
  else
    run_limited inference "$limit" benchmarks.inference_bench
  fi
fi

ls -l "$out"
summary
exit $status
