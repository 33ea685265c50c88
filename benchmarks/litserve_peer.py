"""The second peer of the serving benchmark: LitServe's batching over the same SavedModel.

``benchmarks/serve_throughput.py`` runs it with the Python of the peers' virtualenv
(``benchmarks/.peer-venv``, made on first use; LitServe is not a dependency of the project)::

    benchmarks/.peer-venv/bin/python benchmarks/litserve_peer.py models/mnist/1 --port 8400 \
        --batch-wait-ms 0

It answers ``POST /generate`` with one seed as the service does (the seed's noise by the same
convention, one PNG per request at zlib level 6), batching up to ``--max-batch-size`` requests
into one call of the ``generate`` signature, waiting ``--batch-wait-ms`` for companions (the
benchmark passes ``GAN_BATCH_TIMEOUT_MS``'s value), with one inference worker (LitServe's
default on a CPU) and one API server process, and answers ``GET /readyz`` once started.
"""

import argparse
import io
import json
import os

import litserve as ls
import numpy as np
from fastapi import Request
from fastapi.responses import Response
from PIL import Image


class Generator(ls.LitAPI):
    def __init__(self, model_dir: str, max_batch_size: int, batch_wait_ms: float) -> None:
        super().__init__(
            max_batch_size=max_batch_size,
            batch_timeout=batch_wait_ms / 1000.0,
            api_path="/generate",
        )
        self.model_dir = model_dir

    def setup(self, device: str) -> None:
        import tensorflow as tf

        self.tf = tf
        self.generate = tf.saved_model.load(self.model_dir).signatures["generate"]
        with open(os.path.join(self.model_dir, "model.json")) as file:
            meta = json.load(file)
        self.z_dim, self.num_classes = int(meta["z_dim"]), int(meta["num_classes"])

    def decode_request(self, request: dict) -> tuple[np.ndarray, int]:
        seed = int(request["seeds"][0])
        label = int(request.get("class_label", 0)) if self.num_classes else 0
        return np.random.RandomState(seed).randn(self.z_dim).astype(np.float32), label

    def batch(self, inputs: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
        z = np.stack([row[0] for row in inputs])
        return z, np.array([row[1] for row in inputs], np.int32)

    def predict(self, x: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        tf = self.tf
        z, labels = x
        out = self.generate(
            z=tf.constant(z), labels=tf.constant(labels), truncation_psi=tf.constant(1.0)
        )
        return out["images"].numpy()

    def unbatch(self, output: np.ndarray) -> list[np.ndarray]:
        return list(output)

    def encode_response(self, image: np.ndarray) -> Response:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            buffer, format="PNG", compress_level=6
        )
        return Response(buffer.getvalue(), media_type="image/png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="a model version directory, e.g. models/mnist/1")
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-wait-ms", type=float, default=0.0)
    args = parser.parse_args()
    server = ls.LitServer(
        Generator(args.model_dir, args.max_batch_size, args.batch_wait_ms),
        accelerator="cpu",
        workers_per_device=1,
        timeout=600,  # a queued request of a slow model waits for its batch, as in the service
    )

    @server.app.get("/readyz")
    async def readyz(request: Request) -> dict:
        return {"status": "ready"}

    server.run(host="127.0.0.1", port=args.port, log_level="warning", generate_client_file=False)


if __name__ == "__main__":
    main()
