"""20 concurrent POST /api/predict against a real `crackseg serve` process.

    .venv/bin/python benchmarks/serve_concurrency.py --checkpoint runs/x/best.ckpt "imgs/*.jpg"

Prints one sequential request's latency (the reference, measured in the same run) and, for 20
requests sent at once, the total time and client-side p50/p95 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np


async def burst(base: str, payloads: list[bytes], n: int) -> tuple[list[tuple[int, float]], float]:
    async def one(client: httpx.AsyncClient, i: int) -> tuple[int, float]:
        start = time.perf_counter()
        r = await client.post(
            "/api/predict", files={"file": (f"{i}.jpg", payloads[i % len(payloads)])}
        )
        return r.status_code, time.perf_counter() - start

    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        start = time.perf_counter()
        results = await asyncio.gather(*(one(client, i) for i in range(n)))
        return results, time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", required=True)
    p.add_argument("images", help="glob of images to upload")
    p.add_argument("-n", type=int, default=20)
    args = p.parse_args()
    payloads = [Path(f).read_bytes() for f in sorted(glob.glob(args.images))[: args.n]]
    if not payloads:
        sys.exit(f"no images match {args.images}")
    cmd = [
        sys.executable,
        "-m",
        "crackseg",
        "serve",
        "--checkpoint",
        args.checkpoint,
        "--port",
        "0",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline()).group()
        for _ in range(300):
            try:
                httpx.get(base + "/api/health")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        single = []
        for data in payloads[:3]:
            start = time.perf_counter()
            assert httpx.post(base + "/api/predict", files={"file": ("a.jpg", data)},
                              timeout=600).status_code == 200  # fmt: skip
            single.append(time.perf_counter() - start)
        results, total = asyncio.run(burst(base, payloads, args.n))
        codes = [c for c, _ in results]
        lat = np.array([t for _, t in results])
        print(f"single request (median of 3): {np.median(single):.3f} s")
        print(f"{args.n} concurrent: statuses {sorted(set(codes))}, total {total:.2f} s, "
              f"p50 {np.percentile(lat, 50):.3f} s, p95 {np.percentile(lat, 95):.3f} s")  # fmt: skip
        return 0 if set(codes) == {200} else 1
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
