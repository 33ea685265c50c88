"""Throughput and latency of the service under closed-loop load, beside its yardsticks.

Usage::

    python benchmarks/serve_throughput.py                      # models/ if it holds mnist
    python benchmarks/serve_throughput.py --model-dir /srv/models --model mnist
    python benchmarks/serve_throughput.py --duration 5 --concurrency 1,8,32

It starts ``gan-serve`` as a subprocess on loopback (logging one JSON line per request, as in
production) and drives ``POST /generate`` (one seed per request, a different seed each time) with
``wrk`` (Debian package ``wrk``) at each concurrency, with batching on and with batching off
(``GAN_MAX_BATCH_SIZE=1``). For each run it reports images/s, p50/p95/p99 latency, CPU time per
image and the mean batch size read from /metrics. Also measured: requests of 16 seeds each
answered as one grid PNG, and the cold start (process start to a 200 from /readyz).

Yardsticks measured in the same run: the raw ``generate`` signature in-process at batch 1, 16 and
the maximum batch (with the service's TensorFlow thread settings; called as TensorFlow documents
it, and in alternating slices as the service calls it; at the maximum batch both before and
after the services, the c=32 target using the mean; and in six alternating rounds with the
service at concurrency 32, the steadiest measure of that target on a shared host), the HTTP
ceiling (a bare FastAPI endpoint that parses the same JSON and returns a fixed PNG), and the peer
users would otherwise pick, Ray Serve with ``@serve.batch`` (max 32, waiting as long as the
service's batch timeout) over the same SavedModel (``benchmarks/ray_peer.py``). Ray is installed
on first use into ``benchmarks/.peer-venv`` (from PyPI, with ``tensorflow-cpu``; a few minutes,
once); ``--no-peer`` skips it. The CPU model is printed with the figures: compare only figures of
one run.

The Open Inference Protocol's ``POST /v2/models/NAME/infer`` (binary tensors and JSON tensors)
is measured beside ``POST /generate`` on one more start of the service, one seed per request at
concurrency 1 and 32, the three paths taking turns in each of ``--protocol-rounds`` rounds
(``benchmarks/protocol_paths.py``); ``--only protocols`` runs that part alone (results in
``benchmarks/results/protocol_paths.json``).

Without ``models/mnist`` it builds a model with the same contract (28x28x1, 10 classes,
z_dim 128) in a temporary directory. Results: a table on stdout and
``benchmarks/results/serve_throughput.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import protocol_paths  # this folder is on sys.path: benchmarks run as scripts
from machine import cpu_model
from wrk_lua import LUA_REPORT, LUA_THREADS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "serve_throughput.json"
PROTOCOL_RESULTS = ROOT / "benchmarks" / "results" / "protocol_paths.json"
PROTOCOL_CONCURRENCY = [1, 32]
# The servers measured, by their key in the results.
SERVERS = ("service_batched", "service_unbatched", "service_workers", "http_ceiling", "ray_serve")
PEER_VENV = ROOT / "benchmarks" / ".peer-venv"
# Both peers share one virtualenv: Ray Serve (ray_peer.py) and LitServe (litserve_peer.py,
# measured by serve_sized.py).
PEER_PACKAGES = ("ray[serve]", "litserve", "tensorflow-cpu==2.21.0", "pillow")
GRID_SEEDS = 16
RAW_SLICES = 6  # turns of each way of calling the raw signature, per batch size
PAIRED_ROUNDS = 6  # rounds of raw signature then service at concurrency 32
PAIRED_SECONDS = 3.0


WRK_SCRIPT = (
    """
-- One POST /generate per request, each with a fresh seed (and class, for a conditional model).
local NUM_CLASSES = __NUM_CLASSES__
"""
    + LUA_THREADS
    + """
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
"""
    + LUA_REPORT
)

GRID_SCRIPT = (
    """
-- One POST /generate per request, __SEEDS__ consecutive seeds answered as one grid PNG.
"""
    + LUA_THREADS
    + """
function request()
  counter = counter + 1
  local first = offset + counter * __SEEDS__
  local body = '{"seeds": "' .. first .. '-' .. (first + __SEEDS__ - 1) .. '", "response": "grid"}'
  return wrk.format("POST", "/generate", {["Content-Type"] = "application/json"}, body)
end
"""
    + LUA_REPORT
)

CEILING_APP = """
import io
from fastapi import FastAPI
from fastapi.responses import Response
from PIL import Image
from service.api.schemas import GenerateRequest

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


def wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 300.0) -> None:
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
        time.sleep(0.05)


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


def run_wrk(
    base: str,
    concurrency: int,
    duration: float,
    script: Path,
    images_per_request: int = 1,
    timeout_s: float = 10.0,
) -> dict[str, float]:
    threads = 1 if concurrency < 8 else 2
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{math.ceil(duration)}s",  # wrk takes whole seconds
        "--timeout",
        f"{math.ceil(timeout_s)}s",
        "-s",
        str(script),
        f"{base}/generate",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"RESULT" + r" (\d+)" * 8, out)
    if match is None:
        raise SystemExit(f"could not parse wrk output:\n{out}")
    requests, micros, p50, p95, p99, socket_errors, status_errors, span = map(int, match.groups())
    # Answers over the time they took (wrk_lua: the window's end, in which the answers being
    # computed are lost, left out); the window's figure beside it.
    return {
        "concurrency": concurrency,
        "images_per_s": images_per_request * requests / ((span or micros) / 1e6),
        "images_per_s_window": images_per_request * requests / (micros / 1e6),
        "p50_ms": p50 / 1000,
        "p95_ms": p95 / 1000,
        "p99_ms": p99 / 1000,
        "errors": socket_errors + status_errors,
        "requests": requests,
    }


def settle(base: str) -> None:
    """Wait until ``base`` has worked off the requests a finished wrk run left queued (its
    clients are gone, their requests are still computed): one more request, queued behind
    them, returns when they are done. Each run and round then starts from an idle server."""
    request = urllib.request.Request(
        f"{base}/generate",
        data=b'{"seeds": [1]}',
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=600) as answer:
        answer.read()


def serve(
    command: list[str], env: dict[str, str], base: str, log: Path | None = None
) -> tuple[subprocess.Popen[bytes], float]:
    """Start a server in a session of its own; return it and its seconds to a 200 on /readyz."""
    start = time.perf_counter()
    with open(log or os.devnull, "wb") as stderr:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # so that stop() finds every process it started
        )
    try:
        wait_ready(base, process)
    except BaseException:
        stop(process)
        raise
    return process, time.perf_counter() - start


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s; then any process left in its session (Ray's workers)."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for pid, _ in session_processes(process.pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def session_processes(sid: int) -> list[tuple[int, list[str]]]:
    """(pid, fields of /proc/pid/stat after the name) of every process in session ``sid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[3]) == sid:
            found.append((int(stat.parent.name), fields))
    return found


def cpu_seconds(sid: int) -> float:
    """User + system CPU time so far of every process (all threads) of session ``sid``: a
    server and, for Ray Serve, its workers."""
    ticks = sum(int(f[11]) + int(f[12]) for _, f in session_processes(sid))
    return ticks / os.sysconf("SC_CLK_TCK")


def measure_server(
    command: list[str],
    env: dict[str, str],
    args: argparse.Namespace,
    script: Path,
    *,
    metrics: bool = False,
    grid_script: Path | None = None,
    log: Path | None = None,
    paired: Callable[[], float] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Start a server, load it with wrk at each concurrency, stop it.

    Returns ``runs`` (one row per concurrency), ``cold_start_s`` and, with ``grid_script``,
    ``grid`` (rows of 16-seed grid requests). With ``paired`` (a yardstick's images/s, measured
    in this process while the server idles), ``paired`` rounds too: the yardstick, then the
    server at concurrency 32, taking turns (:data:`PAIRED_ROUNDS` of each). With ``workers``
    (``GAN_WORKERS``), the load starts once every worker is ready (their lines in ``log``).
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process, cold_start = serve([*command, "--port", str(port)], env, base, log)
    if workers > 1:
        assert log is not None
        waited = time.perf_counter()
        deadline = waited + 120
        while log.read_text().count("ready: serving") < workers:
            if time.perf_counter() > deadline:
                stop(process)
                raise TimeoutError(f"fewer than {workers} workers ready; see {log}")
            time.sleep(0.05)
        cold_start += time.perf_counter() - waited  # to the last worker's readiness
    result: dict[str, Any] = {"cold_start_s": cold_start, "runs": []}
    print(f"  ready {cold_start:.1f} s after start", flush=True)

    def load(concurrency: int, wrk_script: Path, images: int) -> dict[str, float]:
        before = batch_stats(base) if metrics else (0.0, 0.0)
        cpu_before = cpu_seconds(process.pid)
        row = run_wrk(base, concurrency, args.duration, wrk_script, images)
        # CPU time per image is what load from other processes does not distort (the
        # server's session: Ray Serve's proxy, replica and controller are counted too).
        row["cpu_ms_per_image"] = (
            1000 * (cpu_seconds(process.pid) - cpu_before) / max(row["requests"] * images, 1)
        )
        if metrics:
            after = batch_stats(base)
            batches = after[1] - before[1]
            row["mean_batch_size"] = (after[0] - before[0]) / batches if batches else 0.0
        print(
            f"  c={concurrency:<4} {row['images_per_s']:8.0f} img/s  p50 {row['p50_ms']:.2f} ms"
            + (f"  ({images} images per request)" if images > 1 else ""),
            flush=True,
        )
        return row

    try:
        run_wrk(base, max(args.concurrency), min(2.0, args.duration), script)  # warm the path
        result["runs"] = [load(c, script, 1) for c in args.concurrency]
        if grid_script is not None:
            result["grid"] = [load(c, grid_script, GRID_SEEDS) for c in (1, 8)]
        if paired is not None:
            result["paired"] = []
            for _ in range(PAIRED_ROUNDS):
                yardstick = paired()
                served = run_wrk(base, 32, PAIRED_SECONDS, script)["images_per_s"]
                result["paired"].append({"yardstick": yardstick, "images_per_s": served})
                print(f"  round: raw {yardstick:.0f} img/s, then c=32 {served:.0f} img/s")
    finally:
        stop(process)
    return result


class RawSignature:
    """The generate signature loaded in this process, with the service's TensorFlow thread
    settings (``GAN_INTRA_OP_THREADS``, ``GAN_INTER_OP_THREADS``).

    The yardstick is the signature called as TensorFlow documents it (keyword tensors); the same
    figures for the service's own way of calling it
    (``service.repository.signatures.FlatSignature``, which
    skips TensorFlow's per-call argument matching) are kept beside it under ``flat_*`` keys.
    """

    def __init__(self, model_path: Path) -> None:
        sys.path.insert(0, str(ROOT))
        from service.repository.repository import configure_tensorflow, load_version
        from service.repository.threads import tensorflow_threads
        from service.settings import Settings

        # The threads gan-serve would choose for this model (``auto`` by default, or as set).
        self.settings = Settings(model_dir=model_path.parent.parent)
        self.threads = tensorflow_threads(self.settings)
        configure_tensorflow(self.threads.intra_op, self.threads.inter_op)
        self.model = load_version(model_path)

    def _calls(self) -> dict[str, Any]:
        import numpy as np
        import tensorflow as tf

        signature = self.model._generate.function  # the SavedModel's own concrete function

        def public(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
            out = signature(
                z=tf.constant(z, tf.float32),
                labels=tf.constant(labels, tf.int32),
                truncation_psi=tf.constant(1.0, tf.float32),
            )
            return np.asarray(out["images"])

        def flat(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
            return self.model.generate(z, labels, 1.0)

        return {"": public, "flat_": flat}

    def _inputs(self, batch: int) -> tuple[Any, Any]:
        import numpy as np

        from gan_contract.seeds import seeds_to_z

        labels = (np.arange(batch) % max(self.model.num_classes, 1)).astype(np.int32)
        return seeds_to_z(range(batch), self.model.z_dim), labels

    def measure(self, batches: list[int], seconds: float) -> dict[str, Any]:
        """Images/s, CPU per image and the median call at each batch size, both ways."""
        import numpy as np

        result: dict[str, Any] = {
            "intra_op_threads": self.threads.intra_op,
            "inter_op_threads": self.threads.inter_op,
        }
        calls = self._calls()
        for batch in batches:
            z, labels = self._inputs(batch)
            for call in calls.values():
                for _ in range(5):
                    call(z, labels)
            times: dict[str, list[float]] = {prefix: [] for prefix in calls}
            cpu = dict.fromkeys(calls, 0.0)
            # The two calls take turns in short slices, so that both meet the same machine (a
            # shared host's speed drifts by several percent within seconds).
            for _ in range(RAW_SLICES):
                for prefix, call in calls.items():
                    cpu_start = time.process_time()
                    times[prefix] += _call_times(call, z, labels, seconds / RAW_SLICES)
                    cpu[prefix] += time.process_time() - cpu_start
            for prefix, measured in times.items():
                key = f"{prefix}batch_{batch}"
                result[f"{key}_images_per_s"] = batch * len(measured) / sum(measured)
                result[f"{key}_cpu_ms_per_image"] = 1000 * cpu[prefix] / (batch * len(measured))
                result[f"{key}_median_ms"] = float(np.median(measured) * 1000)
        return result

    def rate(self, batch: int, seconds: float) -> float:
        """Images/s of ``seconds`` of calls at ``batch``, called as TensorFlow documents it."""
        call = self._calls()[""]
        z, labels = self._inputs(batch)
        call(z, labels)
        times = _call_times(call, z, labels, seconds)
        return batch * len(times) / sum(times)


def _call_times(call: Any, z: Any, labels: Any, seconds: float) -> list[float]:
    """The duration of each call of ``call(z, labels)`` made in ``seconds``."""
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        call(z, labels)
        times.append(time.perf_counter() - t)
    return times


def peer_python() -> Path:
    """The Python of the peers' virtualenv, made (with Ray Serve and LitServe) on first use."""
    python = PEER_VENV / "bin" / "python"
    check = [str(python), "-c", "import ray.serve, litserve, tensorflow, PIL"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"installing Ray Serve and LitServe into {PEER_VENV} (once; a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES]
    subprocess.run(pip, check=True)
    return python


def kept_batch_sizes(log: Path) -> str:
    """The batch sizes the service kept after warm-up, from its log (JSON lines)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    found = re.findall(r"warmed up at batch sizes (\[[0-9, ]*\])", text)
    return ", ".join(found) or "not logged"


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


def print_report(results: dict[str, Any], args: argparse.Namespace) -> None:
    """The table and the targets, from one run's ``results``."""
    raw, cpu, top = results["raw_signature"], results["cpu_model"], args.max_batch_size
    batched = results["service_batched"]["runs"]
    unbatched = results["service_unbatched"]["runs"]
    ceiling = results["http_ceiling"]["runs"]
    peer = results.get("ray_serve", {}).get("runs") or [None] * len(batched)
    print()
    print(f"CPU: {cpu} ({os.cpu_count()} CPUs); model {results['model']}")
    print(
        f"TensorFlow threads: intra-op {raw['intra_op_threads']}, inter-op "
        f"{raw['inter_op_threads']}; batch sizes kept after warm-up: batched "
        f"{results['service_batched']['batch_sizes']}, unbatched "
        f"{results['service_unbatched']['batch_sizes']}"
    )
    print(
        f"raw signature: batch 1 {raw['batch_1_images_per_s']:.0f} img/s "
        f"(median {raw['batch_1_median_ms']:.2f} ms), batch {GRID_SEEDS} "
        f"{raw[f'batch_{GRID_SEEDS}_images_per_s']:.0f} img/s, batch {top} "
        f"{raw[f'batch_{top}_images_per_s']:.0f} img/s "
        f"(CPU per image {raw[f'batch_{top}_cpu_ms_per_image']:.3f} ms)"
    )
    if "raw_signature_before" in results:
        before = results["raw_signature_before"]
        mean, flat_mean = raw_at_top(results, top)
        print(
            f"  batch {top} before the services ran: "
            f"{before[f'batch_{top}_images_per_s']:.0f} img/s (flat "
            f"{before[f'flat_batch_{top}_images_per_s']:.0f}); the mean of both measurements, "
            f"the c=32 target's yardstick: {mean:.0f} (flat {flat_mean:.0f})"
        )
    print(
        f"  called as the service calls it (flat): batch 1 "
        f"{raw['flat_batch_1_images_per_s']:.0f} img/s (median "
        f"{raw['flat_batch_1_median_ms']:.2f} ms), batch {top} "
        f"{raw[f'flat_batch_{top}_images_per_s']:.0f} img/s"
    )
    print(
        "cold start (process start to /readyz 200): "
        + ", ".join(
            f"{name} {results[key]['cold_start_s']:.1f} s"
            for key, name in (
                ("service_batched", "gan-serve"),
                ("http_ceiling", "bare FastAPI"),
                ("ray_serve", "Ray Serve"),
            )
            if key in results
        )
    )
    header = (
        f"{'c':>4} | {'batched img/s':>13} {'p50':>7} {'p99':>7} {'batch':>5} {'cpu':>5} | "
        f"{'unbatched':>9} {'p50':>7} {'cpu':>5} | {'ceiling':>7} {'p50':>6} {'cpu':>5} | "
        f"{'Ray Serve':>9} {'p50':>7} {'cpu':>5} | {'vs unbatched':>12} {'vs ceiling':>10} "
        f"{'vs Ray':>6} {'cpu Ray/batched':>15}"
    )
    print(header)
    print("-" * len(header))
    for b, u, c, p in zip(batched, unbatched, ceiling, peer, strict=True):
        peer_cells = f"{'-':>9} {'-':>7} {'-':>5}"
        vs_peer = f"{'-':>6} {'-':>15}"
        if p:
            peer_cells = (
                f"{p['images_per_s']:>9.0f} {p['p50_ms']:>7.2f} {p['cpu_ms_per_image']:>5.2f}"
            )
            vs_peer = (
                f"{b['images_per_s'] / p['images_per_s']:>6.1f} "
                f"{p['cpu_ms_per_image'] / b['cpu_ms_per_image']:>15.1f}"
            )
        print(
            f"{b['concurrency']:>4} | {b['images_per_s']:>13.0f} {b['p50_ms']:>7.2f} "
            f"{b['p99_ms']:>7.2f} {b['mean_batch_size']:>5.1f} {b['cpu_ms_per_image']:>5.2f} | "
            f"{u['images_per_s']:>9.0f} {u['p50_ms']:>7.2f} {u['cpu_ms_per_image']:>5.2f} | "
            f"{c['images_per_s']:>7.0f} {c['p50_ms']:>6.2f} {c['cpu_ms_per_image']:>5.2f} | "
            f"{peer_cells} | {b['images_per_s'] / u['images_per_s']:>12.2f} "
            f"{b['images_per_s'] / c['images_per_s']:>10.2f} {vs_peer}"
        )
    if "service_workers" in results:
        workers = results["service_workers"]
        print(
            f"{'c':>4} | {'workers=' + str(workers['workers']) + ' img/s':>17} {'p50':>7} "
            f"{'p99':>7} {'batch':>5} {'cpu':>5} | {'vs 1 process':>12} {'vs ceiling':>10}"
        )
        for w, b, c in zip(workers["runs"], batched, ceiling, strict=True):
            print(
                f"{w['concurrency']:>4} | {w['images_per_s']:>17.0f} {w['p50_ms']:>7.2f} "
                f"{w['p99_ms']:>7.2f} {w['mean_batch_size']:>5.1f} {w['cpu_ms_per_image']:>5.2f}"
                f" | {w['images_per_s'] / b['images_per_s']:>12.2f} "
                f"{w['images_per_s'] / c['images_per_s']:>10.2f}"
            )
    for row in results["service_batched"].get("grid", []):
        print(
            f"grid of {GRID_SEEDS} seeds per request, c={row['concurrency']}: "
            f"{row['images_per_s']:.0f} img/s (p50 {row['p50_ms']:.2f} ms, mean batch "
            f"{row['mean_batch_size']:.1f}) = "
            f"{row['images_per_s'] / raw[f'batch_{GRID_SEEDS}_images_per_s']:.2f} x the raw "
            f"signature at batch {GRID_SEEDS}"
        )
    errors = sum(r["errors"] for key in SERVERS for r in results.get(key, {}).get("runs", []))
    print(
        f"(latencies and CPU time per image in ms, all the server's processes; batch = mean "
        f"batch size from /metrics; "
        f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
        f"errors: {errors})"
    )
    for line in targets(results, args):
        print(line)
    if "protocols" in results:
        print("\n".join(["", *results["protocols"]["report"]]))


def raw_at_top(results: dict[str, Any], batch: int) -> tuple[float, float]:
    """Images/s of the raw signature at ``batch``, called as TensorFlow documents it and as the
    service calls it: the mean of the measurements before and after the services ran."""
    runs = [results[key] for key in ("raw_signature_before", "raw_signature") if key in results]
    public = [run[f"batch_{batch}_images_per_s"] for run in runs]
    flat = [run[f"flat_batch_{batch}_images_per_s"] for run in runs]
    return sum(public) / len(public), sum(flat) / len(flat)


def targets(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """The serving-speed targets, as ratios of this run's own figures."""
    raw = results["raw_signature"]
    by_c = {
        key: {r["concurrency"]: r for r in results[key]["runs"]}
        for key in SERVERS
        if key in results
    }
    lines = []
    b, c = by_c["service_batched"], by_c["http_ceiling"]
    if 1 in b:
        bound = raw["batch_1_median_ms"] + c[1]["p50_ms"] + 1.0
        lines.append(
            f"target c=1: p50 {b[1]['p50_ms']:.2f} ms <= raw batch-1 call + ceiling p50 + 1 ms "
            f"= {bound:.2f} ms: {'holds' if b[1]['p50_ms'] <= bound else 'missed'}"
        )
    if 32 in b:
        for key in ("service_batched", "service_workers"):
            if key in results:
                lines += _share_at_32(results, key, c[32]["images_per_s"], args.max_batch_size)
        got = b[32]["images_per_s"]
        if "ray_serve" in by_c:
            ratio = got / by_c["ray_serve"][32]["images_per_s"]
            lines.append(
                f"target c=32: {ratio:.1f} x Ray Serve >= 5: {'holds' if ratio >= 5 else 'missed'}"
            )
        u = by_c["service_unbatched"][32]
        ratio, mean = got / u["images_per_s"], b[32]["mean_batch_size"]
        ok = ratio >= 2 and mean >= 8
        lines.append(
            f"target c=32: {ratio:.2f} x unbatched >= 2 with mean batch {mean:.1f} >= 8: "
            f"{'holds' if ok else 'missed'}"
        )
    return lines


def _share_at_32(results: dict[str, Any], key: str, ceiling: float, top: int) -> list[str]:
    """The c=32 target of the service configuration ``key``: its images/s as a share of
    min(raw signature at batch ``top``, HTTP ceiling), in the single run and in the
    alternating rounds."""
    name = f"{results[key]['workers']} worker" + ("s" if results[key]["workers"] > 1 else "")
    got = next(r["images_per_s"] for r in results[key]["runs"] if r["concurrency"] == 32)
    raw, flat = raw_at_top(results, top)
    floor = 0.5 * min(raw, ceiling)
    lines = [
        f"target c=32, {name}: {got:.0f} img/s >= 50% of min(raw batch {top}, ceiling) = "
        f"{floor:.0f}: {'holds' if got >= floor else 'missed'} "
        f"({100 * got / min(raw, ceiling):.1f}%; "
        f"{100 * got / min(flat, ceiling):.1f}% of the flat call's)"
    ]
    rounds = results[key].get("paired")
    if rounds:
        shares = [r["images_per_s"] / min(r["yardstick"], ceiling) for r in rounds]
        share, sd = statistics.mean(shares), statistics.stdev(shares)
        lines.append(
            f"target c=32, {name}, {len(rounds)} alternating rounds of the raw signature at "
            f"batch {top} and the service: {100 * share:.1f}% (sd {100 * sd:.1f}%, from "
            f"{100 * min(shares):.1f}% to {100 * max(shares):.1f}%) >= 50%: "
            f"{'holds' if share >= 0.5 else 'missed'}"
        )
    return lines


def measure_protocols(
    command: list[str],
    env: dict[str, str],
    args: argparse.Namespace,
    workdir: Path,
    num_classes: int,
) -> dict[str, Any]:
    """Start the batched service once more and measure ``/infer`` (binary and JSON) beside
    ``/generate`` in alternating rounds (``benchmarks/protocol_paths.py``)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = workdir / "protocols.log"
    process, _ = serve([*command, "--port", str(port)], env, base, log)
    try:
        scripts = protocol_paths.write_scripts(workdir, args.model, num_classes)
        rows = protocol_paths.measure(
            base,
            scripts,
            run_wrk,
            lambda: cpu_seconds(process.pid),
            batch_stats,
            PROTOCOL_CONCURRENCY,
            args.protocol_rounds,
            args.protocol_seconds,
        )
    finally:
        stop(process)
    return {"rows": rows, "report": protocol_paths.report(rows, cpu_model())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--model", default="mnist")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument("--concurrency", default="1,8,32,128")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument(
        "--batch-timeout-ms",
        type=float,
        default=None,
        help="GAN_BATCH_TIMEOUT_MS, also the peer's batch wait (default: the service's default)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="GAN_WORKERS of a third configuration of the service (default: the CPUs this "
        "process may use; 1 skips it)",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip Ray Serve")
    parser.add_argument(
        "--only",
        choices=["protocols"],
        help="run one part alone: protocols (/v2 /infer beside /generate)",
    )
    parser.add_argument("--protocol-rounds", type=int, default=4, help="rounds of the protocols")
    parser.add_argument(
        "--protocol-seconds", type=float, default=3.0, help="seconds per path and round"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"results file (default {RESULTS.relative_to(ROOT)}, or "
        f"{PROTOCOL_RESULTS.relative_to(ROOT)} with --only protocols)",
    )
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = PROTOCOL_RESULTS if args.only == "protocols" else RESULTS
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    peer = None if args.no_peer or args.only else peer_python()

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
        grid_script = workdir / "grid.lua"
        grid_script.write_text(GRID_SCRIPT.replace("__SEEDS__", str(GRID_SEEDS)))
        (workdir / "ceiling.py").write_text(CEILING_APP)

        from service.settings import Settings

        batch_timeout_ms = args.batch_timeout_ms
        if batch_timeout_ms is None:
            batch_timeout_ms = float(Settings.model_fields["batch_timeout_ms"].default)
        py = sys.executable
        env = {
            "GAN_MODEL_DIR": str(model_dir),
            "GAN_DEFAULT_MODEL": args.model,
            "GAN_MAX_ENQUEUED": "4096",
            "GAN_BATCH_TIMEOUT_MS": str(batch_timeout_ms),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        # Log level info: one JSON line per request, as the service runs in production.
        serve_cmd = [py, "-m", "service.cli", "--log-level", "info"]
        results: dict[str, Any] = {
            "model": str(model_path),
            "duration_s": args.duration,
            "batch_timeout_ms": batch_timeout_ms,
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
        }
        print(f"CPU: {results['cpu_model']} ({os.cpu_count()} CPUs)")
        batched_env = {**env, "GAN_MAX_BATCH_SIZE": str(args.max_batch_size), "GAN_WORKERS": "1"}
        num_classes = int(meta["num_classes"])
        if args.only == "protocols":
            print("service, /v2 /infer beside /generate:")
            protocols = measure_protocols(serve_cmd, batched_env, args, workdir, num_classes)
            results["protocols"] = protocols
            print("\n".join(["", *protocols["report"]]))
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(results, indent=2))
            print(f"wrote {args.output}")
            return

        print("HTTP ceiling (bare FastAPI endpoint, fixed PNG):")
        ceiling_cmd = [
            py,
            "-m",
            "uvicorn",
            "ceiling:app",
            "--app-dir",
            str(workdir),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        results["http_ceiling"] = measure_server(
            ceiling_cmd, {"PYTHONPATH": str(ROOT)}, args, script
        )

        # The yardstick of the c=32 target is measured before the services and again after
        # them, and the target uses the mean: the host's speed drifts over the run's minutes.
        print(f"raw generate signature at batch {args.max_batch_size}, in-process:")
        raw = RawSignature(model_path)
        results["raw_signature_before"] = raw.measure([args.max_batch_size], seconds=3.0)

        def yardstick() -> float:
            return raw.rate(args.max_batch_size, PAIRED_SECONDS)

        configurations = [
            ("service_batched", args.max_batch_size, 1, grid_script),
            ("service_unbatched", 1, 1, None),
        ]
        if args.workers > 1:
            configurations.append(("service_workers", args.max_batch_size, args.workers, None))
        for key, max_batch, workers, grid in configurations:
            print(f"service, max_batch_size={max_batch}, workers={workers}:")
            log = workdir / f"{key}.log"
            results[key] = measure_server(
                serve_cmd,
                {**env, "GAN_MAX_BATCH_SIZE": str(max_batch), "GAN_WORKERS": str(workers)},
                args,
                script,
                metrics=True,
                grid_script=grid,
                log=log,
                # The c=32 target's steadiest measure: the service and its yardstick in turns.
                paired=yardstick if max_batch > 1 and 32 in args.concurrency else None,
                workers=workers,
            )
            results[key]["workers"] = workers
            results[key]["batch_sizes"] = kept_batch_sizes(log)

        if peer is not None:
            wait_s = batch_timeout_ms / 1000.0
            print(f"Ray Serve, @serve.batch(max_batch_size=32, batch_wait_timeout_s={wait_s:g}):")
            peer_cmd = [
                str(peer),
                str(ROOT / "benchmarks" / "ray_peer.py"),
                str(model_path),
                f"--batch-wait-ms={batch_timeout_ms:g}",
            ]
            results["ray_serve"] = measure_server(
                peer_cmd, {"RAY_USAGE_STATS_ENABLED": "0"}, args, script
            )

        print("service, /v2 /infer beside /generate:")
        results["protocols"] = measure_protocols(serve_cmd, batched_env, args, workdir, num_classes)

        print("raw generate signature, in-process:")
        batches = sorted({1, 2, GRID_SEEDS, args.max_batch_size})
        results["raw_signature"] = raw.measure(batches, seconds=3.0)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print_report(results, args)
    results["targets"] = targets(results, args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
