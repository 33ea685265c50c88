"""How many threads TensorFlow gets, chosen from the served models and the machine before it
starts.

Usage (``gan-serve`` and the app's lifespan do this before loading any model)::

    choice = tensorflow_threads(settings)            # ThreadChoice(intra, inter, reason)
    logger.info("TensorFlow threads: %s", choice)
    configure_tensorflow(choice.intra_op, choice.inter_op)

``GAN_INTRA_OP_THREADS`` and ``GAN_INTER_OP_THREADS`` are ``auto`` by default; a number given for
either wins over the rule below (``0``: TensorFlow's default, one thread per core). TensorFlow
fixes both pools when its runtime starts, so the rule can only use what is known before: the
``model.json`` (resolution) and the size of the variables on disk of every version that will be
served, the CPUs this process may use, ``GAN_WORKERS``, and whether a GPU is present.

The rule, from the measurements in docs/measurements.md (TensorFlow's threads):

- a GPU present: TensorFlow's defaults (the arithmetic runs on the GPU; the CPU threads feed it);
- one CPU: one thread each (more only compete for it);
- a *small* model (every served model's cost below :data:`HEAVY_COST`): one thread each. The
  model call costs less than the HTTP request around it, and the other core is the event
  loop's; TensorFlow's idle pool threads spinning beside it cost the bundled MNIST model a
  third of its images/s;
- a *compute-heavy* model: the cores. The model call is the request's cost (tens of
  milliseconds), and one thread leaves half of a 2-core CPU idle: a 128x128 SN-ResNet served
  at 41% of its raw signature's images/s with one thread, at 90% and more with TensorFlow's
  defaults. With ``GAN_WORKERS`` > 1, each worker gets its share of the cores.

A model's cost is :func:`model_cost`: the parameters (variables' bytes / 4) times the output
pixels, an upper bound of the multiply-adds of one image of a convolutional generator that
needs nothing but the directory listing and ``model.json``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.machine import gpu_present, usable_cpus
from service.repository.policy import VersionPolicies
from service.repository.repository import ModelLoadError, discover, read_model_json

logger = logging.getLogger(__name__)

# Parameters x output pixels from which a model counts as compute-heavy. The bundled MNIST
# model is 0.74e9 (940 thousand parameters of both networks, 28x28 pixels), a 128x128
# SN-ResNet at its default widths 1.5e12; between the two, the measured crossover of the two
# thread settings (docs/measurements.md, TensorFlow's threads) lies near 1e10.
HEAVY_COST = 1e10
AUTO = "auto"


@dataclass(frozen=True)
class ThreadChoice:
    """TensorFlow's intra-op and inter-op pool sizes (0: TensorFlow's default) and why."""

    intra_op: int
    inter_op: int
    reason: str

    def __str__(self) -> str:
        def count(n: int) -> str:
            return "TensorFlow's default" if n == 0 else str(n)

        return f"intra-op {count(self.intra_op)}, inter-op {count(self.inter_op)} ({self.reason})"


def model_cost(version_dir: Path, meta: dict[str, Any]) -> float:
    """Parameters (bytes of ``variables/`` / 4, float32) times output pixels of one version."""
    variables = version_dir / "variables"
    size = sum(f.stat().st_size for f in variables.rglob("*") if f.is_file())
    return size / 4 * int(meta["resolution"]) ** 2


def served_costs(model_dir: Path, policies: VersionPolicies | None = None) -> dict[str, float]:
    """``name/version`` -> :func:`model_cost` of every version the service would serve (each
    model's version policy, ``latest:2`` by default); unreadable ones are left out (loading
    reports them)."""
    costs: dict[str, float] = {}
    try:
        found = discover(model_dir)
    except ModelLoadError:
        return costs
    policies = policies or VersionPolicies()
    for name, versions in found.items():
        for version in policies.of(name).select(versions):
            path = model_dir / name / str(version)
            try:
                costs[f"{name}/{version}"] = model_cost(path, read_model_json(path))
            except (ModelLoadError, OSError, KeyError, TypeError, ValueError):
                continue
    return costs


def choose_threads(
    costs: dict[str, float], cpus: int, workers: int = 1, gpu: bool = False
) -> ThreadChoice:
    """The rule of the module docstring, from the served models' costs and the machine."""
    if gpu:
        return ThreadChoice(0, 0, "auto: a GPU is present")
    if cpus <= 1:
        return ThreadChoice(1, 1, "auto: one CPU")
    heaviest = max(costs, key=costs.__getitem__, default=None)
    if heaviest is None or costs[heaviest] < HEAVY_COST:
        what = f"{heaviest} costs {costs[heaviest]:.2g}" if heaviest else "no model read"
        return ThreadChoice(
            1, 1, f"auto: small models ({what} < {HEAVY_COST:.0e} parameters x pixels)"
        )
    why = f"{heaviest} costs {costs[heaviest]:.2g} >= {HEAVY_COST:.0e} parameters x pixels"
    if workers <= 1:
        return ThreadChoice(0, 0, f"auto: compute-heavy model ({why}) on {cpus} CPUs")
    share = max(1, cpus // workers)
    return ThreadChoice(
        share, share, f"auto: compute-heavy model ({why}), {cpus} CPUs shared by {workers} workers"
    )


def tensorflow_threads(settings: Any) -> ThreadChoice:
    """The pool sizes for ``settings`` (a :class:`service.settings.Settings`): each one set
    explicitly wins; ``auto`` ones follow :func:`choose_threads`."""
    intra, inter = settings.intra_op_threads, settings.inter_op_threads
    if intra != AUTO and inter != AUTO:
        return ThreadChoice(
            int(intra), int(inter), "set explicitly (GAN_INTRA_OP_THREADS, GAN_INTER_OP_THREADS)"
        )
    policies = VersionPolicies.parse(settings.version_policy, settings.model_versions)
    auto = choose_threads(
        served_costs(settings.model_dir, policies),
        usable_cpus(),
        settings.workers,
        gpu_present(),
    )
    if intra == AUTO and inter == AUTO:
        return auto
    return ThreadChoice(
        auto.intra_op if intra == AUTO else int(intra),
        auto.inter_op if inter == AUTO else int(inter),
        f"{auto.reason}; the other set explicitly",
    )


def configure_threads(settings: Any) -> ThreadChoice:
    """Choose the pool sizes for ``settings`` (:func:`tensorflow_threads`), log the choice and
    its reason, and apply them (:func:`~service.repository.repository.configure_tensorflow`)."""
    from service.repository.repository import configure_tensorflow

    choice = tensorflow_threads(settings)
    logger.info("TensorFlow threads: %s", choice)
    configure_tensorflow(choice.intra_op, choice.inter_op)
    return choice


def fills_the_cpus(intra_op: int, cpus: int, gpu: bool) -> bool:
    """Whether a model call of this process keeps every usable CPU busy: no GPU computes, and
    TensorFlow's intra-op pool (``intra_op`` threads, 0 for its default of one per core) spans
    all ``cpus``.

    The engine then encodes a batch's images in the model's thread after the call instead of
    beside the next one (:class:`~service.engine.batcher.BatchConfig`): with no core to spare, an
    encoder thread takes one from the call, whose work is split evenly over the pool's threads,
    so the other thread waits for it. Measured with a 128x128 SN-ResNet at concurrency 32 on 2
    cores: the call took 6% longer per image beside the encoding than after it, which costs
    about 1% of the batch's time (docs/measurements.md, Serving a 128x128 colour model)."""
    return not gpu and (intra_op or cpus) >= cpus


def tensorflow_fills_the_cpus() -> bool:
    """:func:`fills_the_cpus` for the running TensorFlow (its intra-op pool as configured)."""
    import tensorflow as tf

    intra = tf.config.threading.get_intra_op_parallelism_threads()
    return fills_the_cpus(intra, usable_cpus(), gpu_present())
