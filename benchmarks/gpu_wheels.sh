#!/usr/bin/env bash
# The wheels the GPU benchmarks need that the lent GPU machine's image lacks, downloaded here into
# .whl/ (git-ignored through .git/info/exclude): nothing can be fetched on that machine. The list
# is benchmarks/device_wheels.txt (one distribution a line; the test
# tests/test_benchmarks_gpu_image.py reads the same file and imports the benchmarks with only the
# image's packages, benchmarks/device_packages.txt, and these). Run this where pip reaches PyPI,
# then carry the folder:
#
#   bash benchmarks/gpu_wheels.sh
#   run(command="bash benchmarks/run_gpu.sh", timeout_s=600, carry=[".whl"])
#
# (no kind named: the kind this task is lent, an H100 or an H200)
#
# run_gpu.sh installs whatever .whl/ holds with `pip install --target` into a scratch folder on
# PYTHONPATH. A bare name in the list takes this checkout's virtualenv's version (PYTHON, default
# .venv/bin/python); NAME==VERSION pins it. Wheels for CPython 3.12 on x86-64 manylinux (the
# image's python3). About 3.5 MB in all.
#
# Usage: bash benchmarks/gpu_wheels.sh [--list]   (--list: print NAME==VERSION a line, no download)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

py=${PYTHON:-.venv/bin/python}
dest=${WHEELS:-.whl}
mapfile -t names < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' benchmarks/device_wheels.txt | grep .)
mapfile -t pins < <("$py" - "${names[@]}" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version

for name in sys.argv[1:]:
    if "==" in name:
        print(name)
        continue
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        sys.exit(f"gpu_wheels.sh: {name} (benchmarks/device_wheels.txt) is not installed in "
                 f"{sys.executable}: pin it there as {name}==VERSION")
EOF
)
((${#pins[@]} == ${#names[@]})) || exit 1
if [[ ${1:-} == --list ]]; then
  printf '%s\n' "${pins[@]}"
  exit 0
fi
exclude=$(git rev-parse --git-path info/exclude)
if [[ $dest == .whl ]] && ! grep -qx '/.whl/' "$exclude" 2>/dev/null; then
  mkdir -p "$(dirname "$exclude")" && echo '/.whl/' >>"$exclude"
fi
mkdir -p "$dest"
# one version of each: a stale wheel of another version would stop the whole install there
for pin in "${pins[@]}"; do
  stem=$(echo "${pin%%==*}" | tr '-' '_')
  for old in "$dest"/*.whl; do
    [[ -e $old ]] || continue
    base=$(basename "$old")
    if [[ ${base,,} == "${stem,,}"-* && ${base,,} != "${stem,,}-${pin##*==}-"* ]]; then
      rm -f -- "$old"
    fi
  done
done
platforms=()
for n in 2_28 2_27 2_17 2014 1; do
  case $n in 2014 | 1) platforms+=(--platform "manylinux${n}_x86_64") ;; *) platforms+=(--platform "manylinux_${n}_x86_64") ;; esac
done
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d "$dest" "${pins[@]}"
ls -l "$dest"
echo "carry=[\"$dest\"] in the device call; run_gpu.sh installs them"
