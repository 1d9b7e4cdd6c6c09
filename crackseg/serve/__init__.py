"""A small web app for crack finding: drop images on a page, see the width overlay and measurements,
download the mask; the same as JSON from `POST /api/predict`. Needs the `serve` extra.

app = create_app(Predictor.from_checkpoint("runs/x/best.ckpt"))
with running(app) as base_url: ...           # or: crackseg serve --checkpoint runs/x/best.ckpt
"""

from crackseg.serve.app import create_app
from crackseg.serve.limits import Limits
from crackseg.serve.server import running
from crackseg.serve.upload import UploadError, decode_upload

__all__ = ["Limits", "UploadError", "create_app", "decode_upload", "running"]
