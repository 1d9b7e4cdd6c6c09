"""The web app: one page at `/`, `POST /api/predict` (multipart field `file`) and `GET /api/health`.

Every error is a JSON `{"error": "..."}` with a 4xx status that says what to fix. Uploads stream
through a byte limit (`crackseg.serve.limits.BodyLimit`), are sniffed and pixel-checked
(`crackseg.serve.upload`), and analysed in a worker thread so the event loop stays free; the model
runs one image at a time behind a lock, so concurrent requests queue for it instead of splitting
the CPU cores between torch thread pools, and at most `Limits.in_flight` images are decoded at once
(memory stays bounded under load). The work per request is bounded: photos over
`Limits.max_predict_pixels` are downscaled for the model (the mask comes back at full size), and
past `Limits.queue` waiting requests the answer is 503 with Retry-After (`crackseg.serve.admission`).
`GET /api/health` says how busy the server is.
"""

from __future__ import annotations

import base64
import io
import math
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from crackseg.conventions import resolve_threshold
from crackseg.inference import Predictor
from crackseg.measure import measure_cracks, width_overlay
from crackseg.serve.admission import Admission, Busy
from crackseg.serve.limits import FORM_SLACK, BodyLimit, Limits
from crackseg.serve.upload import UploadError, accepted_formats, decode_upload, megabytes

STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {  # the page needs nothing from elsewhere (no CDN: it must work offline)
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
PREDICT_SCHEMA = {  # documents the multipart body in /api/openapi.json (parsed by hand below)
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "mm_per_px": {"type": "number", "exclusiveMinimum": 0},
                    },
                }
            }
        },
    }
}


def png_base64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=3)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class Analyser:
    """Owns the predictor: decode -> predict (one image at a time) -> measure -> PNGs + JSON
    (every response key but "seconds", which the endpoint adds)."""

    def __init__(self, predictor: Predictor, *, threshold: float, mm_per_px: float | None,
                 limits: Limits):  # fmt: skip
        self.predictor, self.threshold, self.mm_per_px = predictor, threshold, mm_per_px
        self.limits = limits
        self.lock = threading.Lock()  # the model: one image at a time
        self.admission = Admission(workers=limits.in_flight, queue=limits.queue)

    def health(self) -> dict:
        model = self.predictor.model
        name = getattr(model, "preset", {}).get("name", type(model).__name__)
        return {"status": "ok", "model": name, "device": str(self.predictor.device),
                "threshold": self.threshold, "mm_per_px": self.mm_per_px,
                "limits": asdict(self.limits), "formats": accepted_formats(),
                "load": self.admission.status()}  # fmt: skip

    def __call__(self, data: bytes, filename: str, mm_per_px: float | None) -> dict:
        """Blocking; call from a worker thread. Raises `UploadError` for bad images."""
        with self.admission.working():
            return self._analyse(data, filename, mm_per_px)

    def model_scale(self, height: int, width: int) -> float:
        """The predictor's scale, reduced so the model sees at most `max_predict_pixels`."""
        own = self.predictor.scale_for(height, width)
        budget = math.sqrt(self.limits.max_predict_pixels / (height * width))
        return min(own, budget)

    def _analyse(self, data: bytes, filename: str, mm_per_px: float | None) -> dict:
        image = decode_upload(data, max_pixels=self.limits.max_pixels, name=filename)  # (H, W, 3)
        scale = self.model_scale(*image.shape[:2])
        with self.lock:
            probs = self.predictor.predict_probs(image, scale=scale)  # (H, W)
        preds = (probs >= self.threshold).astype(np.uint8)  # (H, W) in {0, 1}
        report = measure_cracks(preds, mm_per_px=mm_per_px, source=filename)
        return {
            "filename": filename,
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "threshold": self.threshold,
            "predict_scale": round(scale, 4),  # < 1: downscaled for the model (pixel budget)
            "crack_fraction": float(preds.mean()),
            "mask_png_base64": png_base64(preds * 255),
            "overlay_png_base64": png_base64(width_overlay(image, preds, report)),
            "measurements": report.to_dict(),
        }


async def read_form(request: Request, limits: Limits) -> tuple[bytes, str, str | None]:
    """(file bytes, file name, mm_per_px field or None) from a multipart request; the body is
    streamed through `BodyLimit`, which stops it at the byte limit."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UploadError(415, "send the image as multipart/form-data in the field 'file' "
                          "(e.g. curl -F file=@photo.jpg http://HOST/api/predict)")  # fmt: skip
    try:
        form = await request.form(max_files=1, max_fields=8)
    except HTTPException as exc:  # Starlette's multipart errors: bad boundary, too many files...
        raise UploadError(422, f"could not read the multipart form: {exc.detail}") from None
    try:
        upload, mm_per_px = form.get("file"), form.get("mm_per_px")
        if upload is None:
            raise UploadError(422, "missing multipart field 'file': attach the image as 'file'")
        if not isinstance(upload, UploadFile):
            raise UploadError(422, "field 'file' is text, not a file: attach the image itself")
        data = await upload.read(limits.max_upload_bytes + 1)
        if len(data) > limits.max_upload_bytes:
            raise UploadError(413, f"{upload.filename}: larger than the "
                              f"{megabytes(limits.max_upload_bytes)} upload limit.")  # fmt: skip
        filename = Path(upload.filename or "upload").name[:200] or "upload"
        if mm_per_px is not None and not isinstance(mm_per_px, str):
            raise UploadError(422, "field 'mm_per_px' must be a number, not a file")
        return data, filename, mm_per_px
    finally:
        await form.close()


def parse_mm_per_px(text: str | None, default: float | None) -> float | None:
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise UploadError(422, f"mm_per_px must be a positive number (mm per pixel), got {text!r}")
    return value


def error(status: int, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(predictor: Predictor, *, threshold: float | None = None,
               mm_per_px: float | None = None, limits: Limits | None = None) -> FastAPI:  # fmt: skip
    """The ASGI app around `predictor`; `threshold` defaults to the checkpoint's (else 0.5) and
    `mm_per_px` (physical units) can be overridden per request by the form field of that name."""
    limits = limits or Limits()
    threshold = resolve_threshold(
        threshold, getattr(predictor.model, "config", {}).get("threshold")
    )
    analyse = Analyser(predictor, threshold=threshold, mm_per_px=mm_per_px, limits=limits)
    # /docs would load Swagger UI from a CDN: left out (offline use); the schema is still served.
    app = FastAPI(title="crackseg", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.analyser = analyse
    app.add_middleware(BodyLimit, limit=limits.max_upload_bytes + FORM_SLACK)

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError) -> JSONResponse:
        return error(exc.status, exc.message)

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy) -> JSONResponse:
        return error(503, exc.message, {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code in (404, 405):
            message += (f": {request.method} {request.url.path}. The API is POST /api/predict "
                        "(multipart field 'file') and GET /api/health.")  # fmt: skip
        return error(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "; ".join(str(e.get("msg")) for e in exc.errors()) or "invalid request")

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        return error(500, f"internal error ({type(exc).__name__}); see the server log")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @app.get("/api/health")
    async def health() -> dict:
        return analyse.health()

    @app.post("/api/predict", openapi_extra=PREDICT_SCHEMA)
    async def predict(request: Request) -> JSONResponse:
        """Mask (PNG, base64), width overlay (PNG, base64) and crack measurements for one image."""
        analyse.admission.admit()  # or 503 Busy, before the upload is read
        try:
            data, filename, mm_text = await read_form(request, limits)
            mm = parse_mm_per_px(mm_text, analyse.mm_per_px)
            start = time.perf_counter()
            result = await run_in_threadpool(analyse, data, filename, mm)
        finally:
            analyse.admission.leave()
        result["seconds"] = round(time.perf_counter() - start, 4)  # queueing included
        return JSONResponse(result)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
