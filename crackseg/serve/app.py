"""The web app: one page at `/`, `POST /api/predict` (multipart field `file`) and `GET /api/health`.

Every error is a JSON `{"error": "..."}` with a 4xx status that says what to fix. Uploads are read
with a byte limit before parsing, sniffed and pixel-checked (`crackseg.serve.upload`), and analysed
in a worker thread so the event loop stays free; the model runs one image at a time behind a lock,
so concurrent requests queue for it instead of splitting the CPU cores between torch thread pools,
and at most `Limits.in_flight` images are decoded at once (memory stays bounded under load).
"""

from __future__ import annotations

import base64
import io
import math
import threading
import time
from dataclasses import asdict, dataclass
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

from crackseg.inference import Predictor
from crackseg.measure import measure_cracks, width_overlay
from crackseg.serve.upload import UploadError, decode_upload, megabytes

STATIC = Path(__file__).parent / "static"
FORM_SLACK = 64 * 1024  # multipart boundaries, part headers and small fields on top of the file
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


@dataclass(frozen=True)
class Limits:
    """What one upload may cost: bytes on the wire and decoded pixels."""

    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = 16_800_000  # 4096 x 4096 fits
    in_flight: int = 2  # images decoded/analysed at once: one predicts while one is measured


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
        self.slots = threading.BoundedSemaphore(limits.in_flight)

    def health(self) -> dict:
        model = self.predictor.model
        name = getattr(model, "preset", {}).get("name", type(model).__name__)
        return {"status": "ok", "model": name, "device": str(self.predictor.device),
                "threshold": self.threshold, "mm_per_px": self.mm_per_px,
                "limits": asdict(self.limits)}  # fmt: skip

    def __call__(self, data: bytes, filename: str, mm_per_px: float | None) -> dict:
        """Blocking; call from a worker thread. Raises `UploadError` for bad images."""
        with self.slots:
            return self._analyse(data, filename, mm_per_px)

    def _analyse(self, data: bytes, filename: str, mm_per_px: float | None) -> dict:
        image = decode_upload(data, max_pixels=self.limits.max_pixels, name=filename)  # (H, W, 3)
        with self.lock:
            probs = self.predictor.predict_probs(image)  # (H, W)
        preds = (probs >= self.threshold).astype(np.uint8)  # (H, W) in {0, 1}
        report = measure_cracks(preds, mm_per_px=mm_per_px, source=filename)
        return {
            "filename": filename,
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "threshold": self.threshold,
            "crack_fraction": float(preds.mean()),
            "mask_png_base64": png_base64(preds * 255),
            "overlay_png_base64": png_base64(width_overlay(image, preds, report)),
            "measurements": report.to_dict(),
        }


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it (or its declared length) passes `limit`."""
    too_big = UploadError(413, f"upload is larger than the {megabytes(limit - FORM_SLACK)} limit. "
                          "Send a smaller or more compressed image.")  # fmt: skip
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request, limits: Limits) -> tuple[bytes, str, str | None]:
    """(file bytes, file name, mm_per_px field or None) from a multipart request."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UploadError(415, "send the image as multipart/form-data in the field 'file' "
                          "(e.g. curl -F file=@photo.jpg http://HOST/api/predict)")  # fmt: skip
    body = await read_body(request, limits.max_upload_bytes + FORM_SLACK)
    sent = False

    async def replay() -> dict:  # the body again, for Starlette's multipart parser
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
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
               mm_per_px: float | None = None, limits: Limits = Limits()) -> FastAPI:  # fmt: skip
    """The ASGI app around `predictor`; `threshold` defaults to the checkpoint's (else 0.5) and
    `mm_per_px` (physical units) can be overridden per request by the form field of that name."""
    if threshold is None:
        threshold = getattr(predictor.model, "config", {}).get("threshold", 0.5)
    analyse = Analyser(predictor, threshold=threshold, mm_per_px=mm_per_px, limits=limits)
    # /docs would load Swagger UI from a CDN: left out (offline use); the schema is still served.
    app = FastAPI(title="crackseg", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.analyser = analyse

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError) -> JSONResponse:
        return error(exc.status, exc.message)

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
        data, filename, mm_text = await read_form(request, limits)
        mm = parse_mm_per_px(mm_text, analyse.mm_per_px)
        start = time.perf_counter()
        result = await run_in_threadpool(analyse, data, filename, mm)
        result["seconds"] = round(time.perf_counter() - start, 4)  # queueing included
        return JSONResponse(result)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
