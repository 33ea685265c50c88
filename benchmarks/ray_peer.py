"""The peer of the serving benchmark: Ray Serve's ``@serve.batch`` over the same SavedModel.

``benchmarks/serve_throughput.py`` runs it with the Python of a virtualenv of its own
(``benchmarks/.peer-venv``, made on first use; Ray is not a dependency of the project)::

    benchmarks/.peer-venv/bin/python benchmarks/ray_peer.py models/mnist/1 --port 8300 \
        --batch-wait-ms 0

It answers ``POST /generate`` with one seed as the service does (the seed's noise by the same
convention, one PNG per request at the same zlib level), batching up to 32 requests into one
call of the ``generate`` signature with the service's batch timeout (``--batch-wait-ms``, the
benchmark passes ``GAN_BATCH_TIMEOUT_MS``'s value) as ``batch_wait_timeout_s``, and answers
``GET /readyz`` once deployed.
SIGTERM shuts Ray down with every process it started.
"""

import argparse
import io
import json
import os
import signal
import sys
import time

import numpy as np
import ray
from PIL import Image
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


@serve.deployment(max_ongoing_requests=256)
class Generator:
    def __init__(self, model_dir: str, batch_wait_ms: float) -> None:
        import tensorflow as tf

        self.run.set_batch_wait_timeout_s(batch_wait_ms / 1000.0)

        self.tf = tf
        self.generate = tf.saved_model.load(model_dir).signatures["generate"]
        with open(f"{model_dir}/model.json") as file:
            meta = json.load(file)
        self.z_dim, self.num_classes = int(meta["z_dim"]), int(meta["num_classes"])

    @serve.batch(max_batch_size=32)  # the wait is set in __init__
    async def run(self, rows: list[tuple[np.ndarray, int]]) -> list[bytes]:
        tf = self.tf
        z = np.stack([row[0] for row in rows])
        labels = np.array([row[1] for row in rows], np.int32)
        out = self.generate(
            z=tf.constant(z), labels=tf.constant(labels), truncation_psi=tf.constant(1.0)
        )
        pngs = []
        for image in out["images"].numpy():
            buffer = io.BytesIO()
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
                buffer, format="PNG", compress_level=6
            )
            pngs.append(buffer.getvalue())
        return pngs

    async def __call__(self, request: Request) -> Response:
        if request.url.path.endswith("/readyz"):
            return JSONResponse({"status": "ready"})
        body = await request.json()
        seed = int(body["seeds"][0])
        label = int(body.get("class_label", 0)) if self.num_classes else 0
        z = np.random.RandomState(seed).randn(self.z_dim).astype(np.float32)
        png = await self.run((z, label))
        return Response(png, media_type="image/png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="a model version directory, e.g. models/mnist/1")
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument(
        "--batch-wait-ms", type=float, default=0.0, help="Ray's batch_wait_timeout_s, in ms"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ray.init(
        num_cpus=os.cpu_count(), include_dashboard=False, object_store_memory=256 * 1024 * 1024
    )
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    # serve.deployment adds bind(), which the type checker cannot see.
    app = Generator.bind(args.model_dir, args.batch_wait_ms)  # type: ignore[attr-defined]
    serve.run(app, route_prefix="/")
    try:
        while True:
            time.sleep(3600)
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
