#!/usr/bin/env bash
# Show that `pip install -e .` keeps a torch that is already installed: pyproject.toml declares
# ranges (torch>=2.4), so pip installs nothing torch-related over a torch in that range.
#   bash scripts/check_install.sh                 # torch==2.13.0: the local CPU wheel (2-5 min here)
#   bash scripts/check_install.sh torch==2.14.1   # the CUDA build on this disk (5.5 GB)
# In a throw-away venv: 1) install the given torch, 2) `pip install --dry-run --report` of zcnas must
# plan no torch/nvidia/triton/cuda package, 3) `pip install -e .`, 4) the torch-related
# distributions must be exactly those of step 1 and `import zcnas` must run on that torch.
# Not part of CI (it builds a venv). PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
spec=${1:-torch==2.13.0}
PY=${PYTHON:-python3}
tmp=$(mktemp -d /tmp/zcnas-check-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m venv "$tmp/venv"
pip=("$tmp/venv/bin/python" -m pip)

torch_dists() {  # name==version of every torch-related distribution, sorted
    "$tmp/venv/bin/python" - <<'PY'
from importlib import metadata
import re
names = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                if re.match(r"(torch|triton|nvidia|cuda)", d.metadata["Name"].lower())})
print("\n".join(names))
PY
}

echo "== 1. preinstall $spec"
"${pip[@]}" install -q "$spec"
torch_dists > "$tmp/before.txt"
echo "torch-related distributions: $(wc -l < "$tmp/before.txt")"; grep -i '^torch==' "$tmp/before.txt"

echo "== 2. pip install --dry-run -e . (what pip would change)"
"${pip[@]}" install -q --dry-run --report "$tmp/report.json" -e .
"$tmp/venv/bin/python" - "$tmp/report.json" <<'PY'
import json
import re
import sys
plan = [f"{i['metadata']['name']}=={i['metadata']['version']}"
        for i in json.load(open(sys.argv[1]))["install"]]
print(f"would install {len(plan)}: {' '.join(sorted(plan, key=str.lower))}")
bad = [p for p in plan if re.match(r"(torch|triton|nvidia|cuda)", p.lower())]
if bad:
    sys.exit(f"FAIL: the dry run would install {bad}")
PY

echo "== 3. pip install -e ."
"${pip[@]}" install -q -e .

echo "== 4. torch kept?"
torch_dists > "$tmp/after.txt"
if ! diff "$tmp/before.txt" "$tmp/after.txt"; then
    echo "FAIL: pip install -e . changed the torch-related distributions (diff above)" >&2
    exit 1
fi
"$tmp/venv/bin/python" -c 'import torch, zcnas; print(f"zcnas {zcnas.__version__} imports on torch {torch.__version__}")'
echo "OK: $(grep -i '^torch==' "$tmp/after.txt") kept"
