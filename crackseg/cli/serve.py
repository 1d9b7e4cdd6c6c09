"""`crackseg serve`: the web page and JSON API for one checkpoint (see crackseg.serve)."""

from __future__ import annotations

import argparse

EPILOG = """\
The page (http://HOST:PORT/) takes dropped or chosen images and shows each one's width overlay,
measurement table and a mask download. The API:
  curl -F file=@photo.jpg http://127.0.0.1:8000/api/predict     # JSON: mask/overlay PNG (base64), measurements
  curl -F file=@photo.jpg -F mm_per_px=0.1 http://127.0.0.1:8000/api/predict
  curl http://127.0.0.1:8000/api/health
Errors are 4xx JSON {"error": "..."}: 413 too large (bytes or pixels), 415 not an image, 422 corrupt
image or missing field; 503 with a Retry-After header when --queue requests are already waiting.
--scale (default auto) resizes photos for the model as in `crackseg predict`; photos still over
--predict-megapixels are downscaled further for the model (the mask comes back at full size;
"predict_scale" in the answer says by how much). /api/health reports in_flight, queued and capacity.
Binds to 127.0.0.1 (this machine only) unless --host says otherwise.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="web page and JSON API: upload images, get masks and measurements",
        description="Serve a checkpoint as a small web app and JSON API.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", help="a .ckpt from crackseg train, a bundle file or name "
                   "(default: the bundled model, said in one line)")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    p.add_argument("--port", type=int, default=8000, help="default 8000; 0 = any free port")
    p.add_argument("--threshold", type=float,
                   help="crack probability threshold in [0, 1] (default: the run's)")  # fmt: skip
    p.add_argument("--mm-per-px", type=float, help="pixel size in mm: adds _mm figures")
    p.add_argument(
        "--max-upload-mb", type=float, default=20.0, help="upload size limit (default 20)"
    )
    p.add_argument("--max-megapixels", type=float, default=16.8,
                   help="decoded image size limit (default 16.8: 4096x4096 fits)")  # fmt: skip
    p.add_argument("--predict-megapixels", type=float, default=4.2,
                   help="larger photos are downscaled to this for the model, bounding the CPU "
                   "time per request (default 4.2: 2048x2048)")  # fmt: skip
    p.add_argument("--queue", type=int, default=30,
                   help="requests that may wait for the model; more get 503 (default 30)")  # fmt: skip
    p.add_argument("--tta", action="store_true", help="average with a horizontally flipped pass")
    from crackseg.cli.predict import add_scale_option

    add_scale_option(p)
    p.add_argument("--device", default="auto")
    from crackseg.cli.backend import add_backend_option

    add_backend_option(p)
    p.set_defaults(func=run)


def check_options(args: argparse.Namespace) -> None:
    """Every option, before any work (the same rules as `crackseg predict`)."""
    from crackseg.cli.checks import check_count, check_positive, check_threshold

    check_threshold(args.threshold)
    check_positive(args.mm_per_px, "--mm-per-px", "millimetres per pixel")
    check_positive(args.max_upload_mb, "--max-upload-mb", "MiB per upload")
    check_positive(args.max_megapixels, "--max-megapixels", "decoded pixels per upload")
    check_positive(args.predict_megapixels, "--predict-megapixels", "pixels the model analyses")
    check_count(args.queue, "--queue", minimum=0)
    from crackseg.deploy.backends import check_backend
    from crackseg.inference import scale_settings

    scale_settings(args.scale)
    check_backend(args.checkpoint, args.backend)


def run(args: argparse.Namespace) -> int:
    from crackseg.errors import CrackSegError

    check_options(args)
    try:
        from crackseg.serve import Limits, create_app
        from crackseg.serve.server import bind, server, url
    except ImportError as err:
        raise CrackSegError(
            f"crackseg serve needs the 'serve' extra ({err.name} is missing): "
            "pip install 'crackseg[serve]'"
        ) from None
    from crackseg.cli.predict import model_to_load
    from crackseg.engine.setup import resolve_device
    from crackseg.inference import Predictor, scale_settings
    from crackseg.predict import threshold_for

    checkpoint = model_to_load(args.checkpoint, "serve")
    sock = bind(args.host, args.port)  # before loading the model: a busy port fails fast
    predictor = Predictor.from_checkpoint(checkpoint, device=resolve_device(args.device),
                                          tta=args.tta, backend=args.backend,
                                          **scale_settings(args.scale))  # fmt: skip
    limits = Limits(max_upload_bytes=max(1, int(args.max_upload_mb * 2**20)),
                    max_pixels=max(1, int(args.max_megapixels * 1e6)),
                    max_predict_pixels=max(1, int(args.predict_megapixels * 1e6)),
                    queue=args.queue)  # fmt: skip
    threshold = threshold_for(predictor, args.threshold, checkpoint)
    app = create_app(predictor, threshold=threshold, mm_per_px=args.mm_per_px, limits=limits)
    health = app.state.analyser.health()
    print(f"crackseg serve: {url(sock)}/  ({health['model']} on {health['device']}, "
          f"threshold {health['threshold']}; Ctrl+C to stop)", flush=True)  # fmt: skip
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"crackseg serve: note: listening on {args.host}: other machines can reach it "
              "(there is no authentication)", flush=True)  # fmt: skip
    server(app).run(sockets=[sock])
    return 0
