"""Several server processes on one port: ``GAN_WORKERS``.

Usage (``gan-serve`` does this when ``GAN_WORKERS`` is more than 1)::

    status = serve_workers(host="0.0.0.0", port=8000, workers=2, argv=sys.argv[1:])
    raise SystemExit(status)

Why: one process runs its event loop, model threads and PNG threads under one interpreter lock,
and uses about 1.5 cores of a 2-core CPU at 32 clients. Two processes on the same two cores made
8% more images/s (see the README's serving-speed section). On a GPU, keep one: a second process
would hold a second copy of the model in GPU memory and split the batches.

How: the supervisor (this module, in the process ``gan-serve`` started) binds the listening
socket once, then starts each worker as a new interpreter running ``gan-serve`` itself
(``python -m service.cli`` with the same arguments; not a fork: TensorFlow must not be forked),
which inherits the socket. As with systemd's socket activation, the worker learns of its sockets
from its environment (``GAN_SERVE_LISTEN_FDS``, and ``GAN_SERVE_WATCH_FD``, the supervisor's
pipe): :func:`inherited_sockets` takes them over. Every worker is the whole
service of one process: it loads the models, warms up and only then accepts connections on the
shared socket (the kernel gives each new connection to a worker that is accepting). Each keeps
its own batchers, limits (``GAN_MAX_ENQUEUED`` is per worker), hot reload and drain.

- The socket: bound on every address ``--host`` resolves to (IPv4 and IPv6, as one process
  binds, skipping an address the host cannot assign, such as IPv6 where it is turned off), then
  closed in the supervisor once the workers hold it, so that a port whose workers have all shut
  down refuses connections at once.
- Metrics: the supervisor gives the workers a new directory (``PROMETHEUS_MULTIPROC_DIR``, and
  ``GAN_SERVE_METRICS_DIR`` so that a directory set for other reasons is not taken for it), so
  that /metrics, answered by any worker, covers all of them (:mod:`service.metrics`). The
  directory is removed when the supervisor exits (not when it is killed).
- Signals: SIGTERM and SIGINT go to the supervisor, which passes each to every worker once: a
  SIGTERM drains every worker (``/readyz`` 503, ``GAN_DRAIN_SECONDS`` of serving, then the
  requests in flight finish), as in one process. The workers have process groups of their own,
  so that a terminal's Ctrl-C reaches them through the supervisor only, once.
- A worker that exits on its own (a crash, the kernel's OOM killer, a model that fails to load,
  a batch queue that stopped after an internal error: :mod:`service.server.draining`) stops the
  others (SIGTERM: they drain) and the supervisor exits with that worker's status
  (128 + N for a worker killed by signal N, as a shell reports it; 1 for a worker that exited
  0): a replica with fewer workers than configured is for the orchestrator to restart, as a
  one-process replica that died would be. A worker whose supervisor disappeared drains and
  exits.
- The supervisor exits 0 once every worker has exited 0 after a signal (or was ended by the
  signal passed on, before it could handle it: still loading).
- Under systemd, use ``KillMode=mixed``: its default sends SIGTERM to every process of the
  service, and a worker's second SIGTERM (the supervisor's) would cut its drain short.
"""

from __future__ import annotations

import errno
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
from typing import Any

logger = logging.getLogger("service")

_FORWARDED = (signal.SIGTERM, signal.SIGINT)
# What the supervisor tells a worker: the listening sockets' file descriptors, and the read end
# of a pipe whose other end closes when the supervisor is gone.
LISTEN_FDS_ENV = "GAN_SERVE_LISTEN_FDS"
WATCH_FD_ENV = "GAN_SERVE_WATCH_FD"


def serve_workers(host: str, port: int, workers: int, argv: list[str]) -> int:
    """Run ``workers`` processes of ``gan-serve argv`` on one port until they stop; return the
    exit status for the command (see the module doc).

    A start that fails part-way (a worker the kernel cannot start, EAGAIN or ENOMEM; a metrics
    directory that cannot be made) logs one error line and returns 1, leaving nothing behind:
    the workers already started are stopped, the port is released, the signal handlers are
    restored and the metrics directory is removed.
    """
    from service.metrics import METRICS_DIR_ENV

    try:
        listeners = bind(host, port)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", host, port, exc)
        return 1
    received: list[int] = []

    def receive(sig: int, frame: FrameType | None) -> None:
        received.append(sig)

    previous: dict[int, Any] = {}
    processes: list[subprocess.Popen[bytes]] = []
    metrics_dir: str | None = None
    pipe: tuple[int, int] | None = None
    try:
        try:
            previous = {sig: signal.signal(sig, receive) for sig in _FORWARDED}
            metrics_dir = tempfile.mkdtemp(prefix="gan-serve-metrics-")
            # A pipe the workers watch: end of file when this process is gone, however it ended.
            pipe = os.pipe()
            fds = [sock.fileno() for sock in listeners]
            # -P: the package as installed, not a directory of that name where the command runs.
            command = [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), "-m"]
            command += ["service.cli", *argv]
            env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
            env[METRICS_DIR_ENV] = metrics_dir
            env[LISTEN_FDS_ENV] = ",".join(map(str, fds))
            env[WATCH_FD_ENV] = str(pipe[0])
            # Own process groups from the start (Python 3.11+; the worker does it itself on 3.10).
            group: dict[str, Any] = {"process_group": 0} if sys.version_info >= (3, 11) else {}
            for _ in range(workers):
                processes.append(
                    subprocess.Popen(command, env=env, pass_fds=(*fds, pipe[0]), **group)
                )
        except OSError as exc:
            logger.error("cannot start %d workers on %s:%d: %s", workers, host, port, exc)
            return 1
        finally:
            if pipe is not None:
                os.close(pipe[0])  # the workers hold their copies
            for sock in listeners:  # the workers hold the port now (or none will)
                sock.close()
        logger.info(
            "started %d workers (pids %s) on %s:%d; their metrics in %s",
            workers,
            ", ".join(str(process.pid) for process in processes),
            host,
            port,
            metrics_dir,
        )
        return _supervise(processes, received, metrics_dir)
    finally:
        for process in processes:
            if process.poll() is None:  # a failed start or an error: leave no worker behind
                process.kill()
                process.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if pipe is not None:
            os.close(pipe[1])
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(
    processes: list[subprocess.Popen[bytes]], received: list[int], metrics_dir: str
) -> int:
    """Pass the signals ``received`` on to the workers and watch them until every one has
    exited; return the command's exit status (see the module doc)."""
    from prometheus_client.multiprocess import mark_process_dead

    status = 0
    stopping = False
    forwarded: set[int] = set()
    running = list(processes)
    while running:
        time.sleep(0.1)
        while received:
            sig = received.pop(0)
            stopping = True
            forwarded.add(sig)
            logger.info("%s: passing it to the workers", signal.Signals(sig).name)
            _signal(running, sig)
        for process in [p for p in running if p.poll() is not None]:
            running.remove(process)
            mark_process_dead(process.pid, metrics_dir)  # its queue depth is gone
            code = _exit_status(process.returncode, forwarded)
            if not stopping:
                logger.error(
                    "worker %d exited with status %d: stopping the others", process.pid, code
                )
                status = code or 1
                stopping = True
                _signal(running, signal.SIGTERM)
            elif code and not status:
                status = code
    return status


def bind(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to ``port`` on every address ``host`` resolves to, as one process's server
    binds them (SO_REUSEADDR; an IPv6 socket takes IPv6 only). Raises OSError.

    As asyncio's own server (which binds when ``GAN_WORKERS`` is 1), an address of a family the
    host cannot open a socket for, or cannot assign (EADDRNOTAVAIL: IPv6 turned off, say), is
    skipped as long as another one binds.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            try:
                sock = socket.socket(family, kind, proto)
            except OSError as exc:  # a family this host has no support for at all
                logger.warning("cannot listen on %s: %s; skipping it", address, exc)
                continue
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:
                    raise
                sockets.pop().close()
                logger.warning("cannot listen on %s: %s; skipping it", address, exc)
        if not sockets:
            addresses = [info[4] for info in infos]
            raise OSError(errno.EADDRNOTAVAIL, f"could not bind on any address of {addresses}")
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _exit_status(returncode: int, forwarded: set[int]) -> int:
    """A worker's exit status as the supervisor reports it: 0 for death by a signal it passed
    on (the worker was still loading), 128 + N for another signal N."""
    if returncode >= 0:
        return returncode
    return 0 if -returncode in forwarded else 128 - returncode


def _signal(processes: list[subprocess.Popen[bytes]], sig: int) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(sig)


def inherited_sockets() -> list[socket.socket] | None:
    """In a worker the supervisor started: the listening sockets it passed on (None in any other
    process). Also puts the worker in a process group of its own, keeps the sockets from
    anything it starts, and drains it if the supervisor goes away."""
    listen = os.environ.pop(LISTEN_FDS_ENV, None)
    watch = os.environ.pop(WATCH_FD_ENV, None)
    if listen is None or watch is None:
        return None
    listen_fds = [int(fd) for fd in listen.split(",")]
    watch_fd = int(watch)
    if os.getpgid(0) != os.getpid():
        os.setpgid(0, 0)  # signals from the supervisor only (not a terminal's Ctrl-C as well)
    listeners = [socket.socket(fileno=fd) for fd in listen_fds]
    for fd in (*listen_fds, watch_fd):
        os.set_inheritable(fd, False)  # not held open by anything this process starts
    _drain_when_orphaned(watch_fd)
    return listeners


def _drain_when_orphaned(watch_fd: int) -> None:
    """SIGTERM this process (a drain) if the supervisor goes away without stopping it: the
    pipe's write end closes with the supervisor, and a read returns end of file."""

    def watch() -> None:
        while os.read(watch_fd, 1):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()
