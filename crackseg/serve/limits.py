"""What one request may cost, and the middleware that holds the byte limit.

`BodyLimit` sits in front of the app: a request whose Content-Length passes the limit is refused
with 413 before a byte is read, and a chunked one (no Content-Length) as soon as the bytes
received pass it, while Starlette's multipart parser streams the upload (parts over 1 MiB go to a
temporary file, so memory stays small whatever the client sends).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import JSONResponse

from crackseg.serve.upload import UploadError, megabytes

FORM_SLACK = 64 * 1024  # multipart boundaries, part headers and small fields on top of the file


@dataclass(frozen=True)
class Limits:
    """What one upload may cost (bytes on the wire, decoded pixels, pixels the model analyses)
    and how many requests the server takes at once (analysed + queued; more get 503)."""

    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = 16_800_000  # 4096 x 4096 fits; more is refused with 413
    # larger photos are downscaled for the model (2048 x 2048 fits; 16 MP costs ~4x less CPU)
    max_predict_pixels: int = 4_200_000
    in_flight: int = 2  # images decoded/analysed at once: one predicts while one is measured
    queue: int = 30  # requests waiting for a slot; beyond that 503 + Retry-After

    def __post_init__(self):
        numbers = (self.max_upload_bytes, self.max_pixels, self.max_predict_pixels, self.in_flight)
        if min(numbers) < 1 or self.queue < 0:
            raise ValueError(f"limits must be >= 1 (queue >= 0), got {self}")


def too_large(limit: int) -> UploadError:
    return UploadError(413, f"upload is larger than the {megabytes(limit - FORM_SLACK)} limit. "
                       "Send a smaller or more compressed image.")  # fmt: skip


class BodyLimit:
    """ASGI middleware: request bodies over `limit` bytes get 413 JSON (declared or streamed)."""

    def __init__(self, app, *, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > self.limit:
            err = too_large(self.limit)
            return await JSONResponse({"error": err.message}, err.status)(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:  # reaches the app's UploadError handler: 413 JSON
                    raise too_large(self.limit)
            return message

        await self.app(scope, counted, send)
