"""``gan-serve``: start the service with uvicorn.

Examples::

    gan-serve                                   # the bundled models on 127.0.0.1:8000
    gan-serve --host 0.0.0.0 --port 9000 --model-dir /srv/models
"""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  gan-serve
  gan-serve --host 0.0.0.0 --port 9000 --model-dir /srv/models
  GAN_MAX_BATCH_SIZE=64 gan-serve

Every other setting is a GAN_* environment variable (see the README's configuration table).
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gan-serve``."""
    parser = argparse.ArgumentParser(
        prog="gan-serve",
        description="Serve trained GAN generators over HTTP.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default: %(default)s)")
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="model repository (default: $GAN_MODEL_DIR or models)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``gan-serve``."""
    args = build_parser().parse_args(argv)

    import uvicorn

    from service.app import create_app
    from service.settings import Settings

    overrides = {"model_dir": args.model_dir} if args.model_dir is not None else {}
    settings = Settings(**overrides)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
