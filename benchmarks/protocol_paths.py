"""The Open Inference Protocol's ``/infer`` beside ``POST /generate``: one-seed requests on one
running service, in alternating rounds (run by ``serve_throughput.py``).

Usage (``serve_throughput.py`` does this; ``--only protocols`` runs this part alone)::

    scripts = write_scripts(workdir, model="mnist", num_classes=10)
    rows = measure(base, scripts, run_wrk, concurrencies=[1, 32], rounds=4, seconds=3.0)
    for line in report(rows): print(line)

Three paths, each a ``wrk`` Lua script that sends one seed per request (a fresh one each time):
``generate`` (``POST /generate``, a PNG back), ``v2-binary`` (``POST /v2/models/NAME/infer`` with
the binary tensor extension both ways, as tritonclient sends it by default: the seed's 8 bytes
after the JSON header, the ``images`` tensor's bytes back) and ``v2-json`` (JSON tensors both
ways). The paths take turns within each round, so that a shared host's drift meets all three
alike; the report gives each round's ratio of ``/generate``'s images/s to the path's (the
path's cost over ``/generate``) and CPU time per image.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wrk_lua import LUA_REPORT, LUA_THREADS

LUA_LE = """
-- little-endian bytes of a non-negative integer below 2^53 (LuaJIT has no string.pack)
local function le(n, count)
  local out = {}
  for i = 1, count do
    out[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(out)
end
"""
REQUESTS = {
    "generate": """
function request()
  counter = counter + 1
  local seed = offset + counter
  local body = '{"seeds": [' .. seed .. ']'
  if NUM_CLASSES > 0 then
    body = body .. ', "class_label": ' .. (seed % NUM_CLASSES)
  end
  return wrk.format("POST", "/generate", {["Content-Type"] = "application/json"}, body .. '}')
end
""",
    "v2-binary": """
function request()
  counter = counter + 1
  local seed = offset + counter
  local inputs = '{"name":"seed","shape":[1],"datatype":"INT64",'
    .. '"parameters":{"binary_data_size":8}}'
  local data = le(seed, 8)
  if NUM_CLASSES > 0 then
    inputs = inputs .. ',{"name":"class_label","shape":[1],"datatype":"INT32",'
      .. '"parameters":{"binary_data_size":4}}'
    data = data .. le(seed % NUM_CLASSES, 4)
  end
  local header = '{"inputs":[' .. inputs .. '],"parameters":{"binary_data_output":true}}'
  return wrk.format("POST", "/v2/models/" .. MODEL .. "/infer",
    {["Inference-Header-Content-Length"] = tostring(#header)}, header .. data)
end
""",
    "v2-json": """
function request()
  counter = counter + 1
  local seed = offset + counter
  local inputs = '{"name":"seed","shape":[1],"datatype":"INT64","data":[' .. seed .. ']}'
  if NUM_CLASSES > 0 then
    inputs = inputs .. ',{"name":"class_label","shape":[1],"datatype":"INT32","data":['
      .. (seed % NUM_CLASSES) .. ']}'
  end
  return wrk.format("POST", "/v2/models/" .. MODEL .. "/infer",
    {["Content-Type"] = "application/json"}, '{"inputs":[' .. inputs .. ']}')
end
""",
}
PATHS = tuple(REQUESTS)


def write_scripts(workdir: Path, model: str, num_classes: int) -> dict[str, Path]:
    """One wrk script per path, for ``model`` (``num_classes`` > 0: a class per request)."""
    scripts = {}
    for path, request in REQUESTS.items():
        script = workdir / f"{path}.lua"
        constants = f'local MODEL = "{model}"\nlocal NUM_CLASSES = {num_classes}\n'
        script.write_text(constants + LUA_THREADS + LUA_LE + request + LUA_REPORT)
        scripts[path] = script
    return scripts


Wrk = Callable[[str, int, float, Path], dict[str, float]]
CpuSeconds = Callable[[], float]
BatchStats = Callable[[str], tuple[float, float]]  # (sum, count) of the batch-size histogram


def measure(
    base: str,
    scripts: dict[str, Path],
    run_wrk: Wrk,
    cpu_seconds: CpuSeconds,
    batch_stats: BatchStats,
    concurrencies: list[int],
    rounds: int,
    seconds: float,
) -> list[dict[str, Any]]:
    """Rounds of every path at each concurrency, the paths taking turns within a round; one row
    per (round, concurrency, path) with images/s, p50, the server's CPU ms per image and the
    mean batch size (from /metrics)."""
    for script in scripts.values():  # warm every path (traces, caches) before measuring
        run_wrk(base, max(concurrencies), min(seconds, 2.0), script)
    rows = []
    for concurrency in concurrencies:
        for number in range(rounds):
            for path, script in scripts.items():
                before, batches = cpu_seconds(), batch_stats(base)
                row: dict[str, Any] = dict(run_wrk(base, concurrency, seconds, script))
                cpu = cpu_seconds() - before
                after = batch_stats(base)
                row.update(
                    path=path,
                    round=number,
                    cpu_ms_per_image=1000 * cpu / max(row["requests"], 1),
                    mean_batch_size=(after[0] - batches[0]) / max(after[1] - batches[1], 1),
                )
                rows.append(row)
                print(
                    f"  c={concurrency:<3} round {number + 1}/{rounds} {path:<9} "
                    f"{row['images_per_s']:7.0f} img/s  p50 {row['p50_ms']:.2f} ms  "
                    f"batch {row['mean_batch_size']:.1f}",
                    flush=True,
                )
    return rows


def report(rows: list[dict[str, Any]], cpu: str) -> list[str]:
    """A line per (concurrency, path): median images/s and p50 over the rounds, and the median
    of each round's cost over ``/generate`` (its images/s over the path's, and CPU per image);
    then the target line of the binary path at concurrency 32."""
    lines = [f"Open Inference Protocol beside POST /generate (one seed per request); CPU: {cpu}"]
    targets = []
    for concurrency in sorted({row["concurrency"] for row in rows}):
        at = [row for row in rows if row["concurrency"] == concurrency]
        base = {row["round"]: row for row in at if row["path"] == "generate"}
        for path in PATHS:
            mine = [row for row in at if row["path"] == path]
            throughput = [base[r["round"]]["images_per_s"] / r["images_per_s"] for r in mine]
            cpu_ratio = [r["cpu_ms_per_image"] / base[r["round"]]["cpu_ms_per_image"] for r in mine]
            lines.append(
                f"c={concurrency:<3} {path:<9} "
                f"{statistics.median(r['images_per_s'] for r in mine):7.0f} img/s  "
                f"p50 {statistics.median(r['p50_ms'] for r in mine):6.2f} ms  "
                f"cpu {statistics.median(r['cpu_ms_per_image'] for r in mine):5.2f} ms/img  "
                f"batch {statistics.median(r['mean_batch_size'] for r in mine):4.1f}  "
                f"cost vs /generate: {statistics.median(throughput):.3f} x by images/s "
                f"(rounds {min(throughput):.3f}..{max(throughput):.3f}), "
                f"{statistics.median(cpu_ratio):.3f} x by CPU per image"
            )
            if path == "v2-binary" and concurrency == 32:
                cost = statistics.median(throughput)
                targets.append(
                    f"target c=32: v2 binary /infer costs {cost:.3f} x /generate (median of "
                    f"{len(mine)} alternating rounds) <= 1.10: "
                    f"{'holds' if cost <= 1.10 else 'missed'}"
                )
    errors = sum(row["errors"] for row in rows)
    return [*lines, *targets, f"(errors: {errors})"]
