"""`crackseg export`: a checkpoint or bundled model to an ONNX file that predicts on its own."""

from __future__ import annotations

import argparse

EPILOG = """\
The file carries what inference needs (normalisation, window, predict scale, threshold, model
name) in its metadata, so it alone is enough to predict:
  crackseg export --dynamic --out crackseg.onnx
  crackseg predict --backend onnxruntime --checkpoint crackseg.onnx photos/ --out masks/
Without --dynamic the input is a fixed --image-size square (any batch): for runtimes that want
fixed shapes; predict and serve need --dynamic, as they feed images and tiles of any size.
Every export is run in ONNX Runtime at two input sizes and compared with PyTorch before the
file is written. Needs the 'onnx' extra: pip install 'crackseg[onnx]'.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a model to ONNX (for ONNX Runtime and other runtimes)",
        description="Export a checkpoint or bundled model to ONNX, checked against PyTorch.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", help="a .ckpt from crackseg train, a bundle file or name "
                   "(default: the bundled model, said in one line)")  # fmt: skip
    p.add_argument("--format", default="onnx", choices=["onnx"], help="default onnx")
    p.add_argument("--dynamic", action="store_true",
                   help="any height and width (needed by predict and serve)")  # fmt: skip
    p.add_argument("--image-size", type=int, metavar="N",
                   help="side of the fixed input (default: the model's training size); with "
                   "--dynamic, the size checked against PyTorch")  # fmt: skip
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.set_defaults(func=run)


def check_options(args: argparse.Namespace) -> None:
    """Every option, before any work: one CrackSegError line for the first bad one."""
    from pathlib import Path

    from crackseg.cli.checks import check_count
    from crackseg.deploy.backends import ONNX_SUFFIX, is_onnx_path
    from crackseg.errors import CrackSegError

    check_count(args.image_size, "--image-size", minimum=1)
    if Path(args.out).suffix.lower() != ONNX_SUFFIX:
        raise CrackSegError(f"--out {args.out}: name the file *{ONNX_SUFFIX}")
    if Path(args.out).is_dir():
        raise CrackSegError(f"--out {args.out}: is a folder; give a file name, e.g. model.onnx")
    if is_onnx_path(args.checkpoint):
        raise CrackSegError(
            f"{args.checkpoint}: already an ONNX model; export takes a .ckpt or a bundled model"
        )


def run(args: argparse.Namespace) -> int:
    from crackseg.errors import CrackSegError

    check_options(args)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise CrackSegError(f"crackseg export needs the 'onnx' extra ({err.name} is missing): "
                            "pip install 'crackseg[onnx]'") from None  # fmt: skip
    from crackseg.cli.predict import model_to_load
    from crackseg.deploy.onnx_export import export_onnx
    from crackseg.engine.checkpoint import load_model

    checkpoint = model_to_load(args.checkpoint, "export")
    model = load_model(checkpoint)
    report = export_onnx(model, args.out, dynamic=args.dynamic, image_size=args.image_size,
                         source=str(args.checkpoint or checkpoint.stem))  # fmt: skip
    size = "any height and width" if args.dynamic else "fixed {}x{} input".format(*report.size)
    mib = report.size_bytes / 2**20
    weight = f"{mib:.1f} MiB" if mib >= 1 else f"{report.size_bytes / 1024:.0f} KiB"
    print(f"wrote {report.path} ({weight}, {size}): {report.summary()}")
    if args.dynamic:
        print(f"run it: crackseg predict --backend onnxruntime --checkpoint {report.path} "
              "IMAGES --out FOLDER")  # fmt: skip
    return 0
