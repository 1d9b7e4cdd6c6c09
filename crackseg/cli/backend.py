"""--backend for predict and serve: the PyTorch model (default) or an exported file in ONNX Runtime."""

from __future__ import annotations

import argparse


def add_backend_option(p: argparse.ArgumentParser) -> None:
    from crackseg.deploy.backends import BACKENDS  # torch-free: --help stays fast

    p.add_argument("--backend", default=BACKENDS[0], choices=BACKENDS,
                   help="torch (default): a checkpoint or bundled model; onnxruntime: a .onnx "
                   "file from crackseg export --dynamic, run by ONNX Runtime with the same "
                   "tiling, scale and threshold")  # fmt: skip
