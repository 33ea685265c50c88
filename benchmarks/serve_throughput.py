"""Throughput and latency of the service under closed-loop load, beside its yardsticks.

Usage::

    python benchmarks/serve_throughput.py                      # models/ if it holds mnist
    python benchmarks/serve_throughput.py --model-dir /srv/models --model mnist
    python benchmarks/serve_throughput.py --duration 5 --concurrency 1,8,32

It starts ``gan-serve`` as a subprocess on loopback and drives ``POST /generate`` (one seed per
request, a different seed each time) with ``wrk`` (Debian package ``wrk``) at each concurrency,
with batching on and with batching off (``GAN_MAX_BATCH_SIZE=1``). For each run it reports
images/s, p50/p95/p99 latency and the mean batch size read from /metrics. Yardsticks measured in
the same run: the raw ``generate`` signature in-process at batch 1 and at the maximum batch, and
the HTTP ceiling (a bare FastAPI endpoint that parses the same JSON and returns a fixed PNG).
Without ``models/mnist`` it builds a model with the same contract (28x28x1, 10 classes,
z_dim 128) in a temporary directory. Results: a table on stdout and
``benchmarks/results/serve_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "serve_throughput.json"

WRK_SCRIPT = """
-- One POST /generate per request, each with a fresh seed (and class, for a conditional model).
local NUM_CLASSES = __NUM_CLASSES__
local created = 0
local counter = 0
local offset = 0
function setup(thread)
  thread:set("thread_id", created)
  created = created + 1
end
function init(args)
  offset = (thread_id or 0) * 1000000000 + (os.time() % 100000) * 1000
end
function request()
  counter = counter + 1
  local seed = offset + counter
  local body = '{"seeds": [' .. seed .. ']'
  if NUM_CLASSES > 0 then
    body = body .. ', "class_label": ' .. (seed % NUM_CLASSES)
  end
  body = body .. '}'
  return wrk.format("POST", "/generate", {["Content-Type"] = "application/json"}, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""

CEILING_APP = """
import io
from fastapi import FastAPI
from fastapi.responses import Response
from PIL import Image
from service.schemas import GenerateRequest

app = FastAPI()
_buffer = io.BytesIO()
Image.new("L", (28, 28), 128).save(_buffer, "PNG")
PNG = _buffer.getvalue()


@app.post("/generate")
async def generate(body: GenerateRequest) -> Response:
    return Response(PNG, media_type="image/png", headers={"X-Seeds": str(body.seeds)})


@app.get("/readyz")
async def readyz() -> dict:
    return {"status": "ready"}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"server exited with status {process.returncode} during startup")
        if time.monotonic() > deadline:
            raise SystemExit("server did not become ready in time")
        time.sleep(0.3)


def batch_stats(base: str) -> tuple[float, float]:
    """(sum, count) of the gan_batch_size histogram of the generate signature."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = count = 0.0
    for line in text.splitlines():
        if 'signature="generate"' not in line:
            continue
        if line.startswith("gan_batch_size_sum{"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("gan_batch_size_count{"):
            count += float(line.rsplit(" ", 1)[1])
    return total, count


def run_wrk(base: str, concurrency: int, duration: float, script: Path) -> dict[str, float]:
    threads = 1 if concurrency < 8 else 2
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"{base}/generate",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if match is None:
        raise SystemExit(f"could not parse wrk output:\n{out}")
    requests, micros, p50, p95, p99, socket_errors, status_errors = map(int, match.groups())
    return {
        "concurrency": concurrency,
        "images_per_s": requests / (micros / 1e6),
        "p50_ms": p50 / 1000,
        "p95_ms": p95 / 1000,
        "p99_ms": p99 / 1000,
        "errors": socket_errors + status_errors,
        "requests": requests,
    }


def serve(command: list[str], env: dict[str, str], base: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(base, process)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_server(
    command: list[str], env: dict[str, str], port: int, args: argparse.Namespace, script: Path
) -> list[dict[str, float]]:
    base = f"http://127.0.0.1:{port}"
    process = serve(command, env, base)
    rows = []
    try:
        run_wrk(base, max(args.concurrency), min(2.0, args.duration), script)  # warm the path
        for concurrency in args.concurrency:
            before = batch_stats(base) if args.metrics else (0.0, 0.0)
            cpu_before = cpu_seconds(process.pid)
            row = run_wrk(base, concurrency, args.duration, script)
            # CPU time per image is what load from other processes does not distort.
            row["cpu_ms_per_image"] = (
                1000 * (cpu_seconds(process.pid) - cpu_before) / max(row["requests"], 1)
            )
            if args.metrics:
                after = batch_stats(base)
                batches = after[1] - before[1]
                row["mean_batch_size"] = (after[0] - before[0]) / batches if batches else 0.0
            rows.append(row)
            print(
                f"  c={concurrency:<4} {row['images_per_s']:8.0f} img/s  "
                f"p50 {row['p50_ms']:.2f} ms",
                flush=True,
            )
    finally:
        stop(process)
    return rows


def raw_signature(model_path: Path, max_batch: int, seconds: float) -> dict[str, float]:
    """Images/s of the generate signature in-process, and the median single call."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from gan_contract.seeds import seeds_to_z
    from service.model_repository import load_version

    model = load_version(model_path)
    result: dict[str, float] = {}
    for batch in (1, 2, max_batch):
        z = seeds_to_z(range(batch), model.z_dim)
        labels = (np.arange(batch) % max(model.num_classes, 1)).astype(np.int32)
        for _ in range(5):
            model.generate(z, labels, 1.0)
        times = []
        start, cpu_start = time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds:
            t = time.perf_counter()
            model.generate(z, labels, 1.0)
            times.append(time.perf_counter() - t)
        cpu = time.process_time() - cpu_start
        result[f"batch_{batch}_images_per_s"] = batch * len(times) / sum(times)
        result[f"batch_{batch}_cpu_ms_per_image"] = 1000 * cpu / (batch * len(times))
        result[f"batch_{batch}_median_ms"] = float(np.median(times) * 1000)
    return result


def build_model(root: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.service.savedmodel_factory import export_model

    return export_model(
        root / "mnist" / "1",
        name="mnist",
        version=1,
        z_dim=128,
        resolution=28,
        channels=1,
        num_classes=10,
        width=64,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--model", default="mnist")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument("--concurrency", default="1,8,32,128")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout-ms", type=float, default=2.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")

    workdir = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    try:
        model_dir = args.model_dir
        if not (model_dir / args.model).is_dir():
            print(f"{model_dir / args.model} not found: building a model with the same contract")
            build_model(workdir / "models")
            model_dir = workdir / "models"
        versions = sorted(
            int(p.name) for p in (model_dir / args.model).iterdir() if p.name.isdigit()
        )
        model_path = model_dir / args.model / str(versions[-1])
        meta = json.loads((model_path / "model.json").read_text())
        script = workdir / "seeds.lua"
        script.write_text(WRK_SCRIPT.replace("__NUM_CLASSES__", str(int(meta["num_classes"]))))
        (workdir / "ceiling.py").write_text(CEILING_APP)

        py = sys.executable
        env = {
            "GAN_MODEL_DIR": str(model_dir),
            "GAN_DEFAULT_MODEL": args.model,
            "GAN_MAX_ENQUEUED": "4096",
            "GAN_BATCH_TIMEOUT_MS": str(args.batch_timeout_ms),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        serve_cmd = [py, "-m", "service.cli", "--log-level", "warning"]
        results: dict[str, Any] = {"model": str(model_path), "duration_s": args.duration}

        print("HTTP ceiling (bare FastAPI endpoint, fixed PNG):")
        port = free_port()
        ceiling_cmd = [
            py,
            "-m",
            "uvicorn",
            "ceiling:app",
            "--app-dir",
            str(workdir),
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        ceiling = measure_server(
            ceiling_cmd,
            {"PYTHONPATH": str(ROOT)},
            port,
            argparse.Namespace(**{**vars(args), "metrics": False}),
            script,
        )
        results["http_ceiling"] = ceiling

        print(f"service, batching on (max_batch_size={args.max_batch_size}):")
        port = free_port()
        batched = measure_server(
            [*serve_cmd, "--port", str(port)],
            {**env, "GAN_MAX_BATCH_SIZE": str(args.max_batch_size)},
            port,
            argparse.Namespace(**{**vars(args), "metrics": True}),
            script,
        )
        results["service_batched"] = batched

        print("service, batching off (max_batch_size=1):")
        port = free_port()
        unbatched = measure_server(
            [*serve_cmd, "--port", str(port)],
            {**env, "GAN_MAX_BATCH_SIZE": "1"},
            port,
            argparse.Namespace(**{**vars(args), "metrics": True}),
            script,
        )
        results["service_unbatched"] = unbatched

        print("raw generate signature, in-process:")
        raw = raw_signature(model_path, args.max_batch_size, seconds=3.0)
        results["raw_signature"] = raw
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    raw_max = raw[f"batch_{args.max_batch_size}_images_per_s"]
    raw_cpu = raw[f"batch_{args.max_batch_size}_cpu_ms_per_image"]
    print()
    print(
        f"raw signature: batch 1 {raw['batch_1_images_per_s']:.0f} img/s "
        f"(median {raw['batch_1_median_ms']:.2f} ms), "
        f"batch 2 median {raw['batch_2_median_ms']:.2f} ms, "
        f"batch {args.max_batch_size} {raw_max:.0f} img/s"
    )
    print(
        f"raw signature CPU per image: batch 1 {raw['batch_1_cpu_ms_per_image']:.3f} ms, "
        f"batch {args.max_batch_size} {raw_cpu:.3f} ms"
    )
    header = (
        f"{'c':>4} | {'batched img/s':>13} {'p50':>7} {'p95':>7} {'p99':>7} {'batch':>5} "
        f"{'cpu/img':>7} | {'unbatched img/s':>15} {'p50':>7} {'cpu/img':>7} | "
        f"{'ceiling img/s':>13} | {'vs raw max':>10} {'vs unbatched':>12} {'vs ceiling':>10} "
        f"{'cpu: raw/batched':>16}"
    )
    print(header)
    print("-" * len(header))
    ratios = []
    for b, u, c in zip(batched, unbatched, ceiling, strict=True):
        row = {
            "concurrency": b["concurrency"],
            "batched_vs_raw_max": b["images_per_s"] / raw_max,
            "batched_vs_unbatched": b["images_per_s"] / u["images_per_s"],
            "batched_vs_ceiling": b["images_per_s"] / c["images_per_s"],
            "p50_minus_raw_single_ms": b["p50_ms"] - raw["batch_1_median_ms"],
            "cpu_per_image_raw_max_vs_batched": raw_cpu / b["cpu_ms_per_image"],
            "cpu_per_image_unbatched_vs_batched": u["cpu_ms_per_image"] / b["cpu_ms_per_image"],
        }
        ratios.append(row)
        print(
            f"{b['concurrency']:>4} | {b['images_per_s']:>13.0f} {b['p50_ms']:>7.2f} "
            f"{b['p95_ms']:>7.2f} {b['p99_ms']:>7.2f} {b['mean_batch_size']:>5.1f} "
            f"{b['cpu_ms_per_image']:>7.3f} | {u['images_per_s']:>15.0f} {u['p50_ms']:>7.2f} "
            f"{u['cpu_ms_per_image']:>7.3f} | {c['images_per_s']:>13.0f} | "
            f"{row['batched_vs_raw_max']:>10.2f} {row['batched_vs_unbatched']:>12.2f} "
            f"{row['batched_vs_ceiling']:>10.2f} {row['cpu_per_image_raw_max_vs_batched']:>16.2f}"
        )
    errors = sum(r["errors"] for r in [*batched, *unbatched, *ceiling])
    print(
        f"(latencies and CPU per image in ms; batch = mean batch size from /metrics; "
        f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
        f"errors: {errors})"
    )
    results["ratios"] = ratios
    results["cpu_count"] = os.cpu_count()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
