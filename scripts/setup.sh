#!/usr/bin/env bash
# One setup for both README commands: a local virtualenv in .venv with the CPU build of
# PyTorch installed first (so nothing pulls a multi-GB CUDA build), then fireact with extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[${FIREACT_EXTRAS:-dev}]"
