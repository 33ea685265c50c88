"""Latency and images/s of ``POST /complete`` at concurrency 1 and 16, beside the raw signature.

Usage::

    python benchmarks/complete_latency.py MODELS_DIR --model mnist [--steps 50] [--requests 64]

The latest version of ``MODELS_DIR/MODEL`` must have the ``complete`` signature, as the bundled
``models/mnist/2`` has (``gan-export MODEL_VERSION_DIR --name NAME --encoder-steps N`` adds one
to another model). The service runs in-process
(FastAPI's TestClient, the real app with its batchers); each request sends one 28x28 image with
its bottom half missing. The yardstick, measured in the same run, is the raw ``complete``
signature in-process at batch 1 and at batch 16. Prints a table and writes
benchmarks/results/complete_latency.json with the CPU model.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_model  # this folder is on sys.path: benchmarks run as scripts


def request_body(side: int, steps: int, label: int | None) -> dict[str, Any]:
    from PIL import Image

    grey = np.random.RandomState(0).randint(0, 256, (side, side), dtype=np.uint8)
    alpha = np.full((side, side), 255, np.uint8)
    alpha[side // 2 :] = 0
    buffer = io.BytesIO()
    Image.fromarray(np.stack([grey, alpha], -1), "LA").save(buffer, "PNG")
    body: dict[str, Any] = {"images": [base64.b64encode(buffer.getvalue()).decode()]}
    body.update(steps=steps, response="png")
    if label is not None:
        body["class_label"] = label
    return body


def raw(version_dir: Path, steps: int, batch: int, repeats: int = 5) -> float:
    """Seconds per call of the raw signature at ``batch`` (the median of ``repeats``)."""
    import tensorflow as tf

    info = json.loads((version_dir / "model.json").read_text())
    side, ch = info["resolution"], info["channels"]
    fn = tf.saved_model.load(str(version_dir)).signatures["complete"]
    args = {
        "images": tf.zeros((batch, side, side, ch), tf.uint8),
        "masks": tf.ones((batch, side, side), tf.uint8),
        "labels": tf.zeros((batch,), tf.int32),
        "steps": tf.constant(steps),
    }
    fn(**args)  # trace
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(**args)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("--model", default="mnist")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--requests", type=int, default=64, help="requests per concurrency")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/complete_latency.json")
    )
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    versions = sorted(
        int(p.name) for p in (args.models_dir / args.model).iterdir() if p.name.isdigit()
    )
    version_dir = args.models_dir / args.model / str(versions[-1])
    info = json.loads((version_dir / "model.json").read_text())
    label = 3 if info["num_classes"] else None
    body = request_body(info["resolution"], args.steps, label)
    rows: list[dict[str, Any]] = []
    yardsticks = {f"raw batch {b}": raw(version_dir, args.steps, b) for b in (1, 16)}
    settings = Settings(
        model_dir=args.models_dir, default_model=args.model, max_batch_size=16,
        max_complete_steps=max(args.steps, 1), complete_steps=min(50, args.steps),
        request_timeout_ms=600_000,
    )  # fmt: skip
    with TestClient(create_app(settings)) as client:
        for concurrency in (1, 16):

            def one(_: int) -> float:
                start = time.perf_counter()
                response = client.post("/complete", json=body)
                assert response.status_code == 200, response.text
                return time.perf_counter() - start

            one(0)
            started = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                latencies = list(pool.map(one, range(args.requests)))
            wall = time.perf_counter() - started
            rows.append({
                "concurrency": concurrency,
                "images_per_s": args.requests / wall,
                "p50_ms": 1000 * float(np.median(latencies)),
                "p90_ms": 1000 * float(np.percentile(latencies, 90)),
            })  # fmt: skip
    cpu = cpu_model()
    print(f"POST /complete, {args.steps} steps, model {version_dir} (CPU: {cpu})")
    print("| concurrency | images/s | p50 ms | p90 ms |\n| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['concurrency']} | {row['images_per_s']:.1f} | {row['p50_ms']:.0f} | "
              f"{row['p90_ms']:.0f} |")  # fmt: skip
    for name, seconds in yardsticks.items():
        batch = int(name.split()[-1])
        print(f"{name}: {1000 * seconds:.0f} ms per call, {batch / seconds:.1f} images/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"cpu": cpu, "steps": args.steps, "rows": rows, "raw_seconds": yardsticks}
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
