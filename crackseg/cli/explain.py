"""`crackseg explain`: attention maps of ViT/Segmenter checkpoints, gradient saliency for U-Net."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="show what a model looks at (attention maps, rollout, saliency)",
        description="ViT/Segmenter: the class token's attention per layer and head, attention "
        "rollout over the layers and, for the mask decoder, each class embedding's attention, "
        "overlaid on the image in <name>_attention.png (plus <name>_rollout.png). U-Net has no "
        "attention: a gradient saliency map is written to <name>_saliency.png instead.",
    )
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files, folders or globs")
    p.add_argument("--checkpoint", help="a .ckpt written by crackseg train, or a bundled model's "
                   "name (default: the bundled model; see crackseg models)")  # fmt: skip
    p.add_argument("--out", default="explain", help="output folder (default: ./explain)")
    p.add_argument("--layers", choices=("all", "last"), default="all",
                   help="encoder layers in the grid (default: all)")  # fmt: skip
    p.add_argument("--saliency", action="store_true",
                   help="also write a gradient saliency map for a Segmenter")  # fmt: skip
    p.add_argument("--smoothgrad", type=int, default=0, metavar="N",
                   help="average saliency gradients over N noisy copies (SmoothGrad; default 0)")  # fmt: skip
    p.add_argument("--cell", type=int, default=224, help="grid cell size in px (default 224)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from crackseg.data import read_image
    from crackseg.engine.checkpoint import load_model
    from crackseg.engine.setup import resolve_device
    from crackseg.errors import CrackSegError
    from crackseg.explain import explain, write_explanation
    from crackseg.inputs import find_inputs
    from crackseg.outputs import check_writable, mark_output
    from crackseg.weights import resolve_checkpoint

    if args.smoothgrad < 0:
        raise CrackSegError(f"--smoothgrad {args.smoothgrad}: give a number of copies >= 0")
    if args.cell < 32:
        raise CrackSegError(f"--cell {args.cell}: give a cell size of at least 32 px")
    paths, left_out_note = find_inputs(args.inputs, exclude=args.out)
    if left_out_note:
        print(f"crackseg explain: {left_out_note}", file=sys.stderr)
    check_writable(args.out)
    checkpoint, note = resolve_checkpoint(args.checkpoint)
    if note:
        print(f"crackseg explain: {note}", file=sys.stderr)
    model = load_model(checkpoint, device=resolve_device(args.device))
    mark_output(args.out, "explain")
    for path in paths:
        image = read_image(path)  # (H, W, 3) uint8
        expl = explain(model, image, saliency=args.saliency or None, smoothgrad=args.smoothgrad)
        written = write_explanation(expl, image, args.out, path.stem, layers=args.layers,
                                    cell=args.cell)  # fmt: skip
        files = ", ".join(map(str, written))
        if expl.kind == "saliency":
            print(f"{path}: {expl.model_name} is a convolutional network: attention maps do not "
                  f"apply; wrote a gradient saliency map instead: {files}")  # fmt: skip
        else:
            L, nh = expl.cls_attention.shape[:2]
            last = args.layers == "last"
            what = f"{'last of ' if last else ''}{L} layers x {nh} heads + rollout"
            if expl.class_attention is not None:
                Ld, K = expl.class_attention.shape[:2]
                what += f" + {K} class embeddings x {1 if last else Ld} decoder blocks"
            print(f"{path}: {expl.model_name} attention ({what}): wrote {files}")
        for note in expl.notes:
            print(f"{path}: note: {note}")
    return 0
