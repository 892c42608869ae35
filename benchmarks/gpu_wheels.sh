#!/usr/bin/env bash
# The wheels P3 (benchmarks/train_bench.py) needs on the lent GPU machine, downloaded here into
# .whl/ (git-ignored through .git/info/exclude). P3 runs `fireact train`, whose config is a
# pydantic model, and the machine's image has no pydantic (nothing can be fetched there); P2
# needs nothing. Run this where pip reaches the index, then carry the folder:
#
#   bash benchmarks/gpu_wheels.sh
#   run(command="bash benchmarks/run_gpu.sh", kind="nvidia-h100-x1", timeout_s=600, carry=[".whl"])
#
# run_gpu.sh installs whatever .whl/ holds into a scratch folder on PYTHONPATH. The versions are
# this checkout's virtualenv's (PYTHON, default .venv/bin/python), for CPython 3.12 on x86-64 (the
# image's python3): pydantic, pydantic-core, annotated-types, typing-inspection, and
# typing-extensions (pydantic needs a newer one than the image may have; the newer one serves
# torch too). About 2.5 MB in all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

py=${PYTHON:-.venv/bin/python}
dest=${WHEELS:-.whl}
names=(pydantic pydantic-core annotated-types typing-inspection typing-extensions)
pins=$("$py" - "${names[@]}" <<'EOF'
import sys
from importlib.metadata import version
print(" ".join(f"{name}=={version(name)}" for name in sys.argv[1:]))
EOF
)
exclude=$(git rev-parse --git-path info/exclude)
if [[ $dest == .whl ]] && ! grep -qx '/.whl/' "$exclude" 2>/dev/null; then
  mkdir -p "$(dirname "$exclude")" && echo '/.whl/' >>"$exclude"
fi
mkdir -p "$dest"
platforms=()
for n in 2_28 2_27 2_17 2014 1; do
  case $n in 2014 | 1) platforms+=(--platform "manylinux${n}_x86_64") ;; *) platforms+=(--platform "manylinux_${n}_x86_64") ;; esac
done
# shellcheck disable=SC2086  # $pins: one NAME==VERSION per word
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d "$dest" $pins
ls -l "$dest"
echo "carry=[\"$dest\"] in the device call; run_gpu.sh installs them"
