"""Inference: batched feature extraction (fp32 / bf16) and ONNX export + onnxruntime embedding."""

from personsearch.inference.extract import ExtractConfig, extract_features, extract_from_paths, prepare_model
from personsearch.inference.onnx_export import OnnxEmbedder, export_onnx

__all__ = ["ExtractConfig", "prepare_model", "extract_features", "extract_from_paths", "export_onnx", "OnnxEmbedder"]
