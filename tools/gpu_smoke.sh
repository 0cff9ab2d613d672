#!/usr/bin/env bash
# GPU smoke test (run on a CUDA machine, < 5 minutes): for every shipped recipe, one training step,
# one evaluation, a checkpoint round-trip and its inference path, under fp16 and bf16 autocast;
# one JSON line per recipe and precision. Exits non-zero if any fails.
#   bash tools/gpu_smoke.sh [PYTHON]      (default: .venv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
"$PY" - <<'PYEOF'
import torch
assert torch.cuda.is_available(), "no CUDA device: this smoke test is for GPU machines"
print({"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda})
PYEOF
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PY" -m personsearch.cli -q synth "$WORK/tiny" --preset tiny
"$PY" -m personsearch.methods.smoke --synth "$WORK/tiny" --device cuda --amp fp16,bf16 --out "$WORK/runs"
