"""Leaving PyTorch: ONNX export (`onnx_export`) and an ONNX Runtime backend (`onnx_runtime`) that
`Predictor` drives like a PyTorch model, so predict and serve keep every pre/post-processing rule.

onnx and onnxruntime are an optional extra (`pip install 'crackseg[onnx]'`); they are imported
only when an export or the onnxruntime backend is used.
"""

from crackseg.deploy.backends import BACKENDS, check_backend, load_for_inference

__all__ = ["BACKENDS", "check_backend", "load_for_inference"]
