"""Several server processes on one port: ``GAN_WORKERS``.

Usage (``gan-serve`` does this when ``GAN_WORKERS`` is more than 1)::

    status = serve_workers(host="0.0.0.0", port=8000, workers=2, argv=sys.argv[1:])
    raise SystemExit(status)

Why: one process runs its event loop, model threads and PNG threads under one interpreter lock,
and uses about 1.5 cores of a 2-core CPU at 32 clients. Two processes on the same two cores made
13% more images/s (see the README's serving-speed section). On a GPU, keep one: a second process
would hold a second copy of the model in GPU memory and split the batches.

How: the supervisor (this module, in the process ``gan-serve`` started) binds the listening
socket once, then starts each worker as a new interpreter, ``python -m service.workers`` (not a
fork: TensorFlow must not be forked), which inherits the socket. Every worker is the whole
service of one process: it loads the models, warms up and only then accepts connections on the
shared socket (the kernel gives each new connection to a worker that is accepting). Each keeps
its own batchers, limits (``GAN_MAX_ENQUEUED`` is per worker), hot reload and drain.

- Metrics: the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` to a new directory for the workers,
  so that /metrics, answered by any worker, covers all of them (:mod:`service.metrics`). The
  directory is removed when the supervisor exits.
- Signals: SIGTERM and SIGINT go to the supervisor, which passes each to every worker once: a
  SIGTERM drains every worker (``/readyz`` 503, ``GAN_DRAIN_SECONDS`` of serving, then the
  requests in flight finish), as in one process. The workers have process groups of their own,
  so that a terminal's Ctrl-C reaches them through the supervisor only, once.
- A worker that exits on its own (a crash, the kernel's OOM killer, a model that fails to load)
  stops the others (SIGTERM: they drain) and the supervisor exits with that worker's status (1
  when it had none): a replica with fewer workers than configured is for the orchestrator to
  restart, as a one-process replica that died would be. A worker whose supervisor disappeared
  drains and exits.
- The supervisor exits 0 once every worker has exited 0 after a signal.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from types import FrameType

logger = logging.getLogger("service")

_FORWARDED = (signal.SIGTERM, signal.SIGINT)


def serve_workers(host: str, port: int, workers: int, argv: list[str]) -> int:
    """Run ``workers`` processes of ``gan-serve argv`` on one socket until they stop; return
    the exit status for the command (see the module doc)."""
    import uvicorn
    from prometheus_client.multiprocess import mark_process_dead

    # uvicorn's own binding (IPv4 or IPv6, SO_REUSEADDR), as for its --workers.
    listener = uvicorn.Config(app="service.app:create_app_from_env", host=host, port=port)
    sock = listener.bind_socket()
    metrics_dir = tempfile.mkdtemp(prefix="gan-serve-metrics-")
    # A pipe the workers watch: end of file when this process is gone, however it ended.
    watch_read, watch_write = os.pipe()
    received: list[int] = []

    def receive(sig: int, frame: FrameType | None) -> None:
        received.append(sig)

    previous = {sig: signal.signal(sig, receive) for sig in _FORWARDED}
    command = [sys.executable, "-m", "service.workers", str(sock.fileno()), str(watch_read)]
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    processes: list[subprocess.Popen[bytes]] = []
    status = 0
    try:
        for _ in range(workers):
            processes.append(
                subprocess.Popen([*command, *argv], env=env, pass_fds=(sock.fileno(), watch_read))
            )
        os.close(watch_read)
        logger.info(
            "started %d workers (pids %s) on %s:%d",
            workers,
            ", ".join(str(process.pid) for process in processes),
            host,
            port,
        )
        stopping = False
        running = list(processes)
        while running:
            time.sleep(0.1)
            while received:
                sig = received.pop(0)
                stopping = True
                logger.info("%s: passing it to the workers", signal.Signals(sig).name)
                _signal(running, sig)
            for process in [p for p in running if p.poll() is not None]:
                running.remove(process)
                mark_process_dead(process.pid, metrics_dir)  # its queue depth is gone
                code = process.returncode
                if not stopping:
                    logger.error(
                        "worker %d exited with status %d: stopping the others", process.pid, code
                    )
                    status = code if code > 0 else 1
                    stopping = True
                    _signal(running, signal.SIGTERM)
                elif code != 0 and status == 0:
                    status = code if code > 0 else 1
    finally:
        for process in processes:
            if process.poll() is None:  # an error in this loop: leave no worker behind
                process.kill()
                process.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(watch_write)
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return status


def _signal(processes: list[subprocess.Popen[bytes]], sig: int) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(sig)


def _worker(argv: list[str]) -> None:
    """A worker process: ``LISTEN_FD WATCH_FD gan-serve-arguments...`` from the supervisor."""
    listen_fd, watch_fd, rest = int(argv[0]), int(argv[1]), argv[2:]
    os.setpgid(0, 0)  # signals from the supervisor only (not a terminal's Ctrl-C as well)
    _drain_when_orphaned(watch_fd)
    from service.cli import main

    main(rest, sockets=[socket.socket(fileno=listen_fd)])


def _drain_when_orphaned(watch_fd: int) -> None:
    """SIGTERM this process (a drain) if the supervisor goes away without stopping it: the
    pipe's write end closes with the supervisor, and a read returns end of file."""

    def watch() -> None:
        while os.read(watch_fd, 1):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


if __name__ == "__main__":
    _worker(sys.argv[1:])
