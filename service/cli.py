"""``gan-serve``: start the service with uvicorn.

Examples::

    gan-serve                                   # the bundled models on 127.0.0.1:8000
    gan-serve --host 0.0.0.0 --port 9000 --model-dir /srv/models

The models are loaded and warmed up before the server starts listening: a missing or broken
model directory, or a model that fails its warm-up at every batch size, ends the command with
one error line and exit status 2, never a half-alive server (a batch size at which a model fails,
out of memory, say, is only dropped: :mod:`service.engine.warmup`). Logs are JSON
lines on stderr (one per request); SIGTERM drains for ``GAN_DRAIN_SECONDS`` and exits 0
(:mod:`service.server.draining`); a batch queue that stops after an internal error stops the
process with exit status 1 (after the same drain; a worker at once), so that it is restarted.
Arguments, settings, the
installed packages and the model directory are checked before TensorFlow is imported;
``--dry-run`` prints the resolved configuration and stops.
With ``GAN_WORKERS`` above 1 this process supervises that many server processes sharing the port
(:mod:`service.server.workers`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

EXAMPLES = """examples:
  gan-serve
  gan-serve --host 0.0.0.0 --port 9000 --model-dir /srv/models
  GAN_MAX_BATCH_SIZE=64 GAN_MODEL_VERSIONS='{"mnist": 1}' gan-serve
  GAN_VERSION_POLICY=all gan-serve            # every version on disk (default: the two latest)
  gan-serve --dry-run                         # the resolved settings and the models found

Every other setting is a GAN_* environment variable (see docs/configuration.md).
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gan-serve``."""
    parser = argparse.ArgumentParser(
        prog="gan-serve",
        description="Serve trained GAN generators over HTTP.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default: %(default)s)")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="model repository (default: $GAN_MODEL_DIR or models)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level (default: %(default)s)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved settings and the models found, then exit",
    )
    return parser


# Module name -> the package that provides it: what serving needs (the [serve] extra and TF).
# training/cli/startup.py makes the same kind of check for the training tools. The loop is not
# shared: service/ and training/ never import each other, and the one package both import,
# gan_contract/, holds the conventions of the model format only (numpy and Pillow, never
# TensorFlow, not even lazily: tests/test_layout.py), not how a command starts.
SERVE_NEEDS = {
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "pydantic": "pydantic",
    "pydantic_settings": "pydantic-settings",
    "PIL": "pillow",
    "prometheus_client": "prometheus-client",
    "multipart": "python-multipart",
    "tensorflow": "tensorflow-cpu",
}


def require_packages() -> None:
    """Exit 2 with one line naming the missing packages and the command that installs them."""
    missing = []
    for module, package in SERVE_NEEDS.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or half-removed installation
            found = False
        if not found:
            missing.append(package)
    if missing:
        fail(
            f"missing {', '.join(missing)}: install the service with `make run` "
            "(or `pip install -e '.[serve,cpu]'`; `.[serve,gpu]` on an NVIDIA GPU)"
        )


def fail(message: str) -> None:
    """Print one error line and exit with status 2."""
    print(f"gan-serve: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow without its C++ start-up notices (CPU features, oneDNN) in the log.

    They are written to file descriptor 2 directly, and TensorFlow 2.21 prints them whatever
    ``os.environ`` says by then, so fd 2 points to /dev/null during the import only. A
    ``TF_CPP_MIN_LOG_LEVEL`` the user set is their choice and wins.
    """
    if "tensorflow" in sys.modules or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # for what TensorFlow logs later
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def print_dry_run(
    args: argparse.Namespace,
    settings: Any,
    found: dict[str, list[int]],
    served: dict[str, list[int]],
) -> None:
    """Print what ``gan-serve`` would serve, as JSON (API keys only counted, never shown):
    the versions ``found`` on disk, those the version policy would serve, and the TensorFlow
    threads it would choose."""
    from service.repository.threads import tensorflow_threads

    resolved = settings.model_dump(mode="json", exclude={"api_keys"})
    resolved["api_keys"] = f"{len(settings.api_keys)} key(s)"
    print(
        json.dumps(
            {
                "host": args.host,
                "port": args.port,
                "log_level": args.log_level,
                "settings": resolved,
                "tensorflow_threads": str(tensorflow_threads(settings)),
                "models": found,
                "served": served,
            },
            indent=2,
        )
    )


def main(argv: list[str] | None = None, sockets: list[socket.socket] | None = None) -> None:
    """Entry point of ``gan-serve``. ``sockets``: serve on these, as one worker of several
    (:mod:`service.server.workers`), instead of binding ``--host`` and ``--port``."""
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser().parse_args(argv)
    if sockets is None:  # a worker of a supervisor (GAN_WORKERS) inherits its sockets
        from service.server.workers import inherited_sockets

        sockets = inherited_sockets()
    require_packages()
    from service.logs import configure_logging

    configure_logging(args.log_level)

    from pydantic import ValidationError

    from service.settings import Settings

    overrides = {"model_dir": args.model_dir} if args.model_dir is not None else {}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        fail(f"invalid GAN_* setting: {problems}")

    from service.repository.repository import ModelLoadError, ModelRepository
    from service.repository.threads import configure_threads

    try:
        # Cheap checks first (directory, model.json) so a typo fails before TF is imported.
        from service.repository.policy import VersionPolicies
        from service.repository.repository import discover

        found = discover(settings.model_dir)
        policies = VersionPolicies.parse(settings.version_policy, settings.model_versions)
        if args.dry_run:
            served = {name: policies.of(name).select(versions) for name, versions in found.items()}
            print_dry_run(args, settings, found, served)
            return
        if sockets is None and settings.workers > 1:
            from service.server.workers import serve_workers

            raise SystemExit(serve_workers(args.host, args.port, settings.workers, argv))
        logging.getLogger("service").info(
            "loading TensorFlow and %d model(s) from %s", len(found), settings.model_dir
        )
        import_tensorflow_quietly()
        configure_threads(settings)  # from the models and the machine, unless set
        sys.setswitchinterval(settings.switch_interval_ms / 1000.0)
        repository = ModelRepository.load(settings.model_dir, policies, settings.default_model)
    except ModelLoadError as exc:
        fail(str(exc))

    import uvicorn

    from service.app import create_app
    from service.server.draining import DrainingServer
    from service.server.startup import StartupReport
    from service.server.transport import coalescing_protocol

    app = create_app(settings, repository)
    del repository  # the app owns it now: this frame lives as long as the server (hot reload)
    config = uvicorn.Config(
        StartupReport(app, app.state),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,  # service.logs writes one JSON line per request instead
        log_config=None,  # keep the JSON logging configured above
        http=coalescing_protocol(),  # a response's headers and body in one write
        # After the drain, accepted requests get at most their queue deadline and some margin.
        timeout_graceful_shutdown=max(1, round(settings.request_timeout_ms / 1000.0 + 5)),
    )
    # A worker of a supervisor (it passed the sockets) leaves the replica's drain to it.
    server = DrainingServer(config, settings.drain_seconds, app.state, supervised=bool(sockets))
    try:
        server.run(sockets)
    except SystemExit:  # uvicorn's status 3 when the lifespan fails
        if app.state.startup_error is None:
            raise
    if app.state.startup_error is not None:  # a model that does not warm up, say
        fail(app.state.startup_error)
    if server.failure is not None:  # the app could not serve any more (logged): restart it
        raise SystemExit(1)


if __name__ == "__main__":
    main()
