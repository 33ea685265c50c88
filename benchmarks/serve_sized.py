"""Serving a generator of the size people train: a 128x128 colour SN-ResNet, beside its raw
signature, Ray Serve and LitServe.

Usage::

    python benchmarks/serve_sized.py                        # builds the model (a minute or two)
    python benchmarks/serve_sized.py --model-dir /tmp/sized --duration 20 --concurrency 1,8,32,128

The model is the training package's SN-ResNet at 128x128 RGB and its default widths, exported
like any model, with **untrained** weights (``benchmarks/sized_model.py``: a model call costs
the same whatever the weights). Its ``model.json`` and size make ``gan-serve``'s ``auto``
TensorFlow threads choose TensorFlow's defaults (``service/repository/threads.py``); the raw
signature is measured in this process with the same choice.

Measured in one run, on one machine (its CPU printed):

- the raw ``generate`` signature at batch 1 (median call) and at batch 32 (images/s, CPU time
  per image), and the PNG encoding of one of its images (median);
- ``gan-serve`` with its defaults (one process; ``GAN_REQUEST_TIMEOUT_MS`` raised to 120 s, as a
  deployment of a model this slow would, so that c=128 queues rather than 504s), Ray Serve
  (``benchmarks/ray_peer.py``) and LitServe (``benchmarks/litserve_peer.py``), both batching up
  to 32 with the service's batch timeout, each **alone on the host** (an idle LitServe keeps a
  core busy), in turns: started, warmed up, driven by ``wrk`` with one-seed ``POST /generate``
  at each concurrency, each run starting from an idle server (the requests a previous run left
  queued worked off first), and stopped, server after server, ``--rounds`` rounds: images/s,
  p50 and CPU time per image of all the server's processes; the ratios to the peers are the
  rounds' mean;
- the service's resident memory at rest (after warm-up) and its peak while serving batches of
  the largest allowed size (32);
- rounds of the raw signature at batch 32 and the service at concurrency 32 in turns (the c=32
  target's ratio), and, with the service's c=1 run cut into ``C1_SLICES`` slices, before,
  between and after them the raw batch-1 call (the c=1 target's yardstick), back to back and at
  a c=1 client's pace (a pause of one encoding and 1 ms between calls, in which TensorFlow's
  threads and the CPUs rest as they do at c=1): a shared host's speed drifts within minutes.

Images/s are answers over the time from ``wrk``'s start to the last answer
(``benchmarks/wrk_lua.py``), as the raw signature's are calls over the time to the last call's
end: ``wrk``'s own figure divides by its whole window, whose end loses the batch being computed
when it closes (half a batch of 32 on average, about 7% of a 20-second run of this model); it is
kept in the JSON as ``images_per_s_window``.

Targets, each printed with whether it held: c=32 at least 90% of the raw signature's images/s at
batch 32; c=1 p50 at most the raw batch-1 call (at a c=1 client's pace; back to back beside it)
plus one image's encoding plus 1 ms; more images/s
than both peers at every concurrency. Results: a table on stdout and
``benchmarks/results/serve_sized.json``. The peers live in ``benchmarks/.peer-venv`` (installed
on first use by ``serve_throughput.peer_python``); ``--no-peers`` skips them.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from machine import cpu_model  # this folder is on sys.path: benchmarks run as scripts
from serve_throughput import (
    WRK_SCRIPT,
    batch_stats,
    cpu_seconds,
    free_port,
    kept_batch_sizes,
    peer_python,
    run_wrk,
    serve,
    session_processes,
    settle,
    stop,
)
from sized_model import export_resnet

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "serve_sized.json"
# The c=1 run of the service is cut into slices, with the raw batch-1 call measured before the
# first slice, between slices and after the last (these many calls each time, back to back and
# again paced): a shared host's speed moves by several percent within a minute, and the target's
# margin is 2%, so the yardstick is taken over the same minute as the run, in step with it, in
# slices of a few seconds (a drift lasting one slice moves one of eight medians, not the result).
C1_SLICES = 8
YARDSTICK_CALLS = 8
TOP = 32  # the largest batch: GAN_MAX_BATCH_SIZE's default, and the peers' max_batch_size
WRK_TIMEOUT_S = 120.0


class MemoryWatch:
    """The largest resident memory (VmRSS, MiB) of a process session while inside."""

    def __init__(self, sid: int) -> None:
        self.sid = sid
        self.peak = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._done.wait(0.2):
            self.peak = max(self.peak, resident_mib(self.sid))


def resident_mib(sid: int) -> float:
    """Resident memory (VmRSS) of every process of session ``sid``, in MiB."""
    total = 0
    for pid, _ in session_processes(sid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


class Raw:
    """The generate signature in this process, with the threads ``gan-serve`` would choose."""

    def __init__(self, model_path: Path) -> None:
        sys.path.insert(0, str(ROOT))
        from service.repository.repository import configure_tensorflow, load_version
        from service.repository.threads import tensorflow_threads
        from service.settings import Settings

        self.threads = tensorflow_threads(Settings(model_dir=model_path.parent.parent))
        configure_tensorflow(self.threads.intra_op, self.threads.inter_op)
        self.model = load_version(model_path)

    def _inputs(self, batch: int) -> tuple[Any, Any]:
        import numpy as np

        from gan_contract.seeds import seeds_to_z

        return seeds_to_z(range(batch), self.model.z_dim), np.zeros(batch, np.int32)

    def call_seconds(self, batch: int, calls: int, pause_s: float = 0.0) -> list[float]:
        """The duration of ``calls`` calls at ``batch`` (after one untimed call), back to back
        or with ``pause_s`` seconds between them (the pace of one client who waits for each
        answer: TensorFlow's threads and the CPUs rest in between, as they do at c=1)."""
        z, labels = self._inputs(batch)
        self.model.generate(z, labels, 1.0)
        times = []
        for _ in range(calls):
            if pause_s:
                time.sleep(pause_s)
            start = time.perf_counter()
            self.model.generate(z, labels, 1.0)
            times.append(time.perf_counter() - start)
        return times

    def rate(self, batch: int, seconds: float) -> float:
        """Images/s of calls at ``batch`` for about ``seconds`` (two calls at least); the CPU
        time per image of the last measurement is kept as :attr:`cpu_ms_per_image`."""
        z, labels = self._inputs(batch)
        count, start, cpu = 0, time.perf_counter(), time.process_time()
        while count < 2 or time.perf_counter() - start < seconds:
            self.model.generate(z, labels, 1.0)
            count += 1
        self.cpu_ms_per_image = 1000 * (time.process_time() - cpu) / (batch * count)
        return batch * count / (time.perf_counter() - start)

    @functools.cached_property
    def encode_ms(self) -> float:
        """Median milliseconds of the PNG encoding (level 6) of one generated image, measured
        once: the c=1 yardstick's pause and the target's bound use the same figure."""
        from service.imaging import encode_png

        z, labels = self._inputs(8)
        images = self.model.generate(z, labels, 1.0)
        times = []
        for image in list(images) * 3:
            start = time.perf_counter()
            encode_png(image, 6)
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)


@dataclass
class Spec:
    """How to start one server under test."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path | None = None


@dataclass
class Server:
    """One server under test: its process, address and what was measured of it."""

    name: str
    process: subprocess.Popen[bytes]
    base: str
    log: Path | None
    result: dict[str, Any] = field(default_factory=lambda: {"runs": []})


def start(spec: Spec, result: dict[str, Any]) -> Server:
    """Start a server and wait until it answers; note its cold start and resident memory (the
    first time) in ``result``, which the server's runs extend."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process, cold = serve([*spec.command, f"--port={port}"], spec.env, base, spec.log)
    server = Server(spec.name, process, base, spec.log, result)
    rest = resident_mib(process.pid)
    result.setdefault("cold_start_s", cold)
    result.setdefault("rest_mib", rest)
    print(f"{spec.name}: ready {cold:.1f} s after start; resident {rest:.0f} MiB", flush=True)
    return server


def load(server: Server, concurrency: int, seconds: float, script: Path) -> dict[str, Any]:
    """One wrk run of ``server`` from idle (:func:`settle`), with its CPU time per image and,
    for gan-serve, its mean batch size."""
    settle(server.base)
    before = batch_stats(server.base) if server.log else (0.0, 0.0)
    cpu_before = cpu_seconds(server.process.pid)
    row = run_wrk(server.base, concurrency, seconds, script, timeout_s=WRK_TIMEOUT_S)
    row["cpu_ms_per_image"] = (
        1000 * (cpu_seconds(server.process.pid) - cpu_before) / max(row["requests"], 1)
    )
    if server.log:
        after = batch_stats(server.base)
        batches = after[1] - before[1]
        row["mean_batch_size"] = (after[0] - before[0]) / batches if batches else 0.0
    return row


def measure(specs: list[Spec], args: argparse.Namespace, script: Path, raw: Raw) -> dict[str, Any]:
    """Every server alone on the host, in turns: started, warmed up, loaded at each concurrency
    and stopped, server after server (the first first in even rounds, last in odd ones),
    ``args.rounds`` rounds, so that what the shared host does meanwhile falls on all of them;
    then rounds of the raw signature at batch 32 and gan-serve at concurrency 32 in turns.

    Alone, because a server that waits is not always idle: LitServe's idle worker loop keeps a
    core busy (15 s of CPU in 15 s idle, 2.21 on 2 cores), Ray Serve's processes take a
    quarter of one, and either beside another server halves a model that computes on both
    cores."""
    results: dict[str, dict[str, Any]] = {spec.name: {"runs": []} for spec in specs}
    service = specs[0].name
    peak = 0.0
    for turn in range(args.rounds):
        for spec in specs if turn % 2 == 0 else specs[::-1]:
            server = start(spec, results[spec.name])
            try:
                run_wrk(server.base, 4, 5.0, script, timeout_s=WRK_TIMEOUT_S)  # warm every path
                with MemoryWatch(server.process.pid) as memory:
                    for concurrency in args.concurrency:
                        run_one(server, concurrency, turn, args, script, raw, spec.name == service)
                if spec.name == service and spec.log is not None:
                    peak = max(peak, memory.peak)
                    results[service]["batch_sizes"] = kept_batch_sizes(spec.log)
            finally:
                stop(server.process)
    # The c=32 target: longer windows, the four batches a round holds weigh its start from idle
    # (the first batch takes what queued meanwhile) less.
    seconds = max(args.duration, 4 * 32 / args.expected_rate)
    paired = []
    server = start(specs[0], results[service])
    try:
        run_wrk(server.base, 4, 5.0, script, timeout_s=WRK_TIMEOUT_S)
        for _ in range(args.rounds):
            settle(server.base)
            yardstick = raw.rate(TOP, seconds)
            served = load(server, 32, seconds, script)["images_per_s"]
            paired.append({"raw": yardstick, "images_per_s": served})
            print(f"  round: raw {yardstick:.2f} img/s, then c=32 {served:.2f} img/s", flush=True)
    finally:
        stop(server.process)
    results[service].update(peak_mib=peak, paired=paired)
    return results


def run_one(
    server: Server,
    concurrency: int,
    turn: int,
    args: argparse.Namespace,
    script: Path,
    raw: Raw,
    is_service: bool,
) -> None:
    """One wrk run of ``server`` at ``concurrency`` (for the service at c=1, slices of one, in
    turns with the raw call: :func:`run_c1`), recorded in its result and printed."""
    # Twice a request's expected wait at least (a closed loop of c clients waits about c
    # images' time): wrk counts only the requests that finish in its window.
    seconds = max(args.duration, 2 * concurrency / args.expected_rate)
    if concurrency == 1 and is_service:
        row = run_c1(server, seconds, script, raw)
    else:
        row = load(server, concurrency, seconds, script)
    row["round"] = turn
    server.result["runs"].append(row)
    print(
        f"  {server.name:10s} c={concurrency:<4} {row['images_per_s']:7.2f} "
        f"img/s  p50 {row['p50_ms']:8.0f} ms  CPU {row['cpu_ms_per_image']:5.0f} "
        f"ms/image  errors {row['errors']}",
        flush=True,
    )


def run_c1(server: Server, seconds: float, script: Path, raw: Raw) -> dict[str, Any]:
    """The service at c=1 for ``seconds`` in :data:`C1_SLICES` slices, with the c=1 target's
    yardsticks around and between them: the raw batch-1 call back to back, and at a c=1
    client's pace (a pause of one encoding and 1 ms between calls, the time the service may
    spend outside the call, in which TensorFlow's threads and the CPUs rest as they do at c=1).
    The run's p50 is the median of the slices' p50s; the yardsticks, the median of all their
    calls."""
    pause = (raw.encode_ms + 1.0) / 1000
    yardsticks: dict[str, list[float]] = {"raw_batch_1_ms": [], "raw_batch_1_paced_ms": []}

    def measure_yardsticks() -> None:
        yardsticks["raw_batch_1_ms"] += raw.call_seconds(1, YARDSTICK_CALLS)
        yardsticks["raw_batch_1_paced_ms"] += raw.call_seconds(1, YARDSTICK_CALLS, pause)

    settle(server.base)
    measure_yardsticks()
    slices = []
    for _ in range(C1_SLICES):
        slices.append(load(server, 1, max(seconds / C1_SLICES, 2.0), script))
        measure_yardsticks()
    requests = sum(s["requests"] for s in slices)
    busy = sum(s["requests"] / s["images_per_s"] for s in slices if s["images_per_s"])
    row: dict[str, Any] = {
        "concurrency": 1,
        "images_per_s": requests / busy if busy else 0.0,
        "requests": requests,
        "errors": sum(s["errors"] for s in slices),
        "cpu_ms_per_image": sum(s["cpu_ms_per_image"] * s["requests"] for s in slices)
        / max(requests, 1),
        "mean_batch_size": statistics.mean(s.get("mean_batch_size", 1.0) for s in slices),
        "slices": slices,
    }
    for name in ("p50_ms", "p95_ms", "p99_ms"):
        row[name] = statistics.median(s[name] for s in slices)
    row.update({k: 1000 * statistics.median(v) for k, v in yardsticks.items()})
    return row


def report(results: dict[str, Any]) -> list[str]:
    """The table and the targets, as lines."""
    raw = results["raw"]
    servers = [k for k in ("service", "ray_serve", "litserve") if k in results]
    lines = [
        f"CPU: {results['cpu_model']} ({results['cpu_count']} CPUs); model {results['model']} "
        "(untrained weights)",
        f"TensorFlow threads (gan-serve's auto, and the raw signature's): {raw['threads']}",
        f"raw signature: batch 1 median {raw['batch_1_median_ms']:.1f} ms; batch {TOP} "
        f"{raw['batch_top_images_per_s']:.2f} img/s ({raw['batch_top_cpu_ms_per_image']:.0f} ms "
        f"of CPU per image); PNG encoding of one image {raw['encode_ms']:.2f} ms",
        "service memory: resident {:.0f} MiB at rest, {:.0f} MiB at most while serving batches "
        "of up to {} (batch sizes kept: {})".format(
            results["service"]["rest_mib"],
            results["service"]["peak_mib"],
            TOP,
            results["service"].get("batch_sizes", "?"),
        ),
    ]
    header = f"{'c':>4} | " + " | ".join(f"{k + ' img/s, p50, CPU':>30}" for k in servers)
    lines += [header, "-" * len(header)]
    # Each server's runs by concurrency: one per round.
    by_c: dict[str, dict[int, list[dict[str, Any]]]] = {k: {} for k in servers}
    for k in servers:
        for r in results[k]["runs"]:
            by_c[k].setdefault(r["concurrency"], []).append(r)

    def mean(k: str, c: int, field: str) -> float:
        return statistics.mean(r[field] for r in by_c[k][c])

    for c in results["concurrency"]:
        cells = []
        for k in servers:
            if c not in by_c[k]:
                cells.append(f"{'-':>30}")
                continue
            cells.append(
                f"{mean(k, c, 'images_per_s'):9.2f} {mean(k, c, 'p50_ms'):9.0f} "
                f"{mean(k, c, 'cpu_ms_per_image'):10.0f}"
            )
        lines.append(f"{c:>4} | " + " | ".join(cells))
    load = f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    lines.append(
        f"(means of {results['rounds']} rounds taken in turns; images/s; p50 in ms; CPU time per "
        f"image in ms, all the server's processes; {load})"
    )
    if "service" in by_c and 32 in by_c["service"]:
        share = mean("service", 32, "images_per_s") / raw["batch_top_images_per_s"]
        lines.append(
            f"target c=32: {100 * share:.0f}% of the raw signature at batch {TOP} (the table's "
            f"rounds against its measurement at the start) >= 90%: "
            f"{'holds' if share >= 0.9 else 'missed'}"
        )
        paired = results["service"].get("paired")
        if paired:
            shares = [r["images_per_s"] / r["raw"] for r in paired]
            avg = statistics.mean(shares)
            sd = statistics.stdev(shares) if len(shares) > 1 else 0.0
            lines.append(
                f"target c=32, {len(shares)} alternating rounds of the raw signature and the "
                f"service: {100 * avg:.0f}% (sd {100 * sd:.0f}%, from {100 * min(shares):.0f}% "
                f"to {100 * max(shares):.0f}%) >= 90%: {'holds' if avg >= 0.9 else 'missed'}"
            )
    if "service" in by_c and 1 in by_c["service"]:
        for r in by_c["service"][1]:
            paced = r["raw_batch_1_paced_ms"] + raw["encode_ms"] + 1.0
            tight = r["raw_batch_1_ms"] + raw["encode_ms"] + 1.0
            lines.append(
                f"target c=1, round {r['round']}: p50 {r['p50_ms']:.1f} ms (median of "
                f"{len(r.get('slices', [r]))} slices) <= raw batch-1 call between them at a c=1 "
                f"client's pace ({r['raw_batch_1_paced_ms']:.1f} ms) + one "
                f"encoding + 1 ms = {paced:.1f} ms: {'holds' if r['p50_ms'] <= paced else 'missed'}"
                f" (back to back: {r['raw_batch_1_ms']:.1f} ms, bound {tight:.1f} ms: "
                f"{'holds' if r['p50_ms'] <= tight else 'missed'})"
            )
    for peer in ("ray_serve", "litserve"):
        if peer not in by_c:
            continue
        cells, ahead = [], True
        for c in results["concurrency"]:
            pairs = zip(by_c["service"].get(c, []), by_c[peer].get(c, []), strict=False)
            ratios = [a["images_per_s"] / b["images_per_s"] for a, b in pairs if b["images_per_s"]]
            if ratios:
                cells.append(f"c={c} {statistics.mean(ratios):.2f}x")
                ahead = ahead and statistics.mean(ratios) > 1
        lines.append(
            f"target: ahead of {peer} at every concurrency (mean of the rounds' ratios: "
            f"{', '.join(cells)}): {'holds' if ahead else 'missed'}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="where the model is (built there if absent)"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per wrk run")
    parser.add_argument("--concurrency", default="1,8,32,128")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every server in turns")
    parser.add_argument("--no-peers", action="store_true", help="skip Ray Serve and LitServe")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    peer = None if args.no_peers else peer_python()
    workdir = Path(tempfile.mkdtemp(prefix="serve-sized-"))
    try:
        model_dir = args.model_dir or workdir / "models"
        print(f"CPU: {cpu_model()}; building or reusing the model in {model_dir}", flush=True)
        model_path = export_resnet(model_dir, resolution=128)
        script = workdir / "seeds.lua"
        script.write_text(WRK_SCRIPT.replace("__NUM_CLASSES__", "0"))
        results: dict[str, Any] = {
            "model": f"SN-ResNet 128x128x3, widths 64 ({model_path.name})",
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "rounds": args.rounds,
        }
        from service.settings import Settings

        wait_ms = float(Settings.model_fields["batch_timeout_ms"].default)
        print("raw generate signature, in-process:", flush=True)
        raw = Raw(model_path)
        batch_1 = raw.call_seconds(1, 5)
        results["raw"] = {
            "threads": str(raw.threads),
            "batch_1_median_ms": 1000 * statistics.median(batch_1),
            "batch_top_images_per_s": raw.rate(TOP, 2 * args.duration),
            "batch_top_cpu_ms_per_image": raw.cpu_ms_per_image,
            "encode_ms": raw.encode_ms,
        }
        args.expected_rate = results["raw"]["batch_top_images_per_s"]
        print(f"  {results['raw']}", flush=True)
        env = {
            "GAN_MODEL_DIR": str(model_dir),
            "GAN_DEFAULT_MODEL": model_path.parent.name,
            "GAN_MAX_ENQUEUED": "4096",
            "GAN_REQUEST_TIMEOUT_MS": str(1000 * WRK_TIMEOUT_S),
            "GAN_POLL_SECONDS": "0",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        serve_cmd = [sys.executable, "-m", "service.cli", "--log-level", "info"]
        specs = [Spec("service", serve_cmd, env, workdir / "service.log")]
        if peer is not None:
            peers = {
                "ray_serve": ("ray_peer.py", {"RAY_USAGE_STATS_ENABLED": "0"}),
                "litserve": ("litserve_peer.py", {}),
            }
            for key, (file, extra) in peers.items():
                command = [
                    str(peer),
                    str(ROOT / "benchmarks" / file),
                    str(model_path),
                    f"--batch-wait-ms={wait_ms:g}",
                ]
                specs.append(Spec(key, command, extra))
        results.update(measure(specs, args, script, raw))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lines = report(results)
    print()
    print("\n".join(lines))
    results["report"] = lines
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
