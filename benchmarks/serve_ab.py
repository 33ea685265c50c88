"""Two builds of the service side by side: alternating wrk rounds of one-seed POST /generate.

Usage::

    git worktree add /tmp/before <commit>          # the build to compare against
    .venv/bin/python benchmarks/serve_ab.py --before /tmp/before [--after .] [--rounds 8]

    # one build, two settings: TensorFlow's threads one each against TensorFlow's defaults
    .venv/bin/python benchmarks/serve_ab.py --before . \
        --before-env GAN_INTRA_OP_THREADS=1 --before-env GAN_INTER_OP_THREADS=1 \
        --after-env GAN_INTRA_OP_THREADS=0 --after-env GAN_INTER_OP_THREADS=0

Both servers are started once from their own source trees (with this environment's packages),
warmed up, then loaded in turns (before, after, before, ...) for ``--seconds`` each at every
``--concurrency``, so that what the shared machine does meanwhile falls on both. The table gives
each round's ratio after / before and their mean and standard deviation; a result is a change
only when the mean ratio is several standard deviations of the mean away from 1. The CPU model
is printed with the figures, and everything is written to ``benchmarks/results/serve_ab.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_model
from serve_throughput import WRK_SCRIPT, run_wrk, settle

ROOT = Path(__file__).resolve().parents[1]


def start(
    tree: Path, port: int, model_dir: Path, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``gan-serve`` of the source tree ``tree`` on ``port`` (with the ``extra`` environment),
    ready to answer."""
    env = {**os.environ, "PYTHONPATH": str(tree), "GAN_POLL_SECONDS": "0", **(extra or {})}
    command = [sys.executable, "-m", "service.cli", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(
        [*command, "--model-dir", str(model_dir)], cwd=tree, env=env, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 900  # a large model warms up for minutes on a busy host
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"the server of {tree} did not get ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="source tree to compare with")
    parser.add_argument("--after", type=Path, default=ROOT, help="source tree (default: this)")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--before-env", action="append", default=[], help="KEY=VALUE for the before server"
    )
    parser.add_argument(
        "--after-env", action="append", default=[], help="KEY=VALUE for the after server"
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "serve_ab.json"
    )
    args = parser.parse_args()
    envs = {
        side: dict(item.split("=", 1) for item in getattr(args, f"{side}_env"))
        for side in ("before", "after")
    }
    models = [p for p in args.model_dir.glob("*/*/model.json")]
    classes = max((json.loads(p.read_text())["num_classes"] for p in models), default=0)
    machine = f"{cpu_model()}, {os.cpu_count()} CPUs"
    print(f"machine: {machine}")
    with tempfile.TemporaryDirectory() as work:
        script = Path(work) / "seeds.lua"
        script.write_text(WRK_SCRIPT.replace("__NUM_CLASSES__", str(classes)))
        servers = {
            "before": start(args.before.resolve(), 18601, args.model_dir, envs["before"]),
            "after": start(args.after.resolve(), 18602, args.model_dir, envs["after"]),
        }
        bases = {"before": "http://127.0.0.1:18601", "after": "http://127.0.0.1:18602"}
        try:
            for name in servers:  # warm both paths
                run_wrk(bases[name], max(args.concurrency), 2.0, script)
                settle(bases[name])
            results = []
            for concurrency in args.concurrency:
                rounds = []
                for _ in range(args.rounds):
                    row = {}
                    for name in ("before", "after"):
                        base = bases[name]
                        row[name] = run_wrk(base, concurrency, args.seconds, script, 1, 120.0)
                        # The requests wrk left in flight are worked off before the other
                        # server's run: a slow model computes them for seconds.
                        settle(base)
                    rounds.append(row)
                ratios = [r["after"]["images_per_s"] / r["before"]["images_per_s"] for r in rounds]
                p50 = {n: statistics.median(r[n]["p50_ms"] for r in rounds) for n in bases}
                mean = statistics.mean(ratios)
                sd = statistics.stdev(ratios) if len(ratios) > 1 else 0.0
                results.append(
                    {"concurrency": concurrency, "ratios": ratios, "p50_ms": p50, "rounds": rounds}
                )
                print(
                    f"c={concurrency:<4} after/before images/s: mean {mean:.3f} "
                    f"(sd {sd:.3f}, {min(ratios):.3f}..{max(ratios):.3f}, {len(ratios)} rounds); "
                    f"median p50 {p50['before']:.2f} ms -> {p50['after']:.2f} ms"
                )
        finally:
            for process in servers.values():
                process.terminate()
                process.wait(timeout=60)
    out = args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine, "envs": envs, "results": results}
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
