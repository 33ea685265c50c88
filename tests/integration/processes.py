"""Start the service and nginx as real processes on loopback, for the integration tests.

Usage::

    with ServiceProcess(model_dir) as replica:
        urllib.request.urlopen(replica.url + "/readyz")

Every process is bounded in time: start-up waits at most ``startup_timeout`` seconds, and the
context manager kills what is still running on exit.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status code of GET ``url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, urllib.error.URLError):
        return None


def wait_for(url: str, status: int = 200, timeout: float = 120.0) -> None:
    """Poll ``url`` until it answers ``status``; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_status(url) == status:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer {status} within {timeout:.0f} s")


class ServiceProcess:
    """``gan-serve`` in a subprocess on a free loopback port."""

    def __init__(
        self,
        model_dir: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        self.model_dir = model_dir
        self.port = port or free_port()
        self.env = env or {}
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_path: Path | None = None) -> ServiceProcess:
        """Start the process and wait until /readyz answers 200."""
        return self.launch(log_path).wait_ready()

    def launch(self, log_path: Path | None = None) -> ServiceProcess:
        """Start the process without waiting (start several, then ``wait_ready`` each)."""
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **self.env}
        command = [sys.executable, "-m", "service.cli", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--model-dir", str(self.model_dir)]
        self.log_path = log_path
        # The child keeps its own copy of the log's file descriptor.
        with open(log_path or os.devnull, "ab") as output:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        return self

    @property
    def workers(self) -> int:
        """The server processes of this replica (``GAN_WORKERS``)."""
        return int(self.env.get("GAN_WORKERS", "1"))

    def wait_ready(self) -> ServiceProcess:
        """Wait until /readyz answers 200 and, with a log and several workers, until each
        worker has logged that it serves (/readyz answers as soon as the first one does);
        raise (killing the process) if it exits or times out."""
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while http_status(self.url + "/readyz") != 200 or not self._workers_ready():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gan-serve exited with {self.process.returncode}; see {self.log_path}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"{self.url} not ready within {self.startup_timeout:.0f} s")
            time.sleep(0.1)
        return self

    def _workers_ready(self) -> bool:
        if self.workers == 1 or self.log_path is None:
            return True
        return self.log_path.read_text().count("ready: serving") >= self.workers

    def terminate(self, timeout: float = 60.0) -> int:
        """Send SIGTERM and wait for the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> ServiceProcess:
        # `with ServiceProcess(...).start(log_path=...)` is already running: no second start.
        if self.process is not None and self.process.poll() is None:
            return self
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


def render_nginx_conf(template: Path, listen_port: int, upstreams: list[str], prefix: Path) -> str:
    """``deploy/nginx.conf`` with loopback replicas and port, and temp paths in ``prefix``.

    Only the addresses change: each ``replica-N:PORT`` becomes ``upstreams[N - 1]`` and the
    server parameters (max_fails, fail_timeout) stay as deployed.
    """
    text = template.read_text()
    names = re.findall(r"(?m)^\s*server (replica-\d+:\d+)", text)
    assert len(names) == len(upstreams), "deploy/nginx.conf names other replicas than expected"
    for name, address in zip(names, upstreams, strict=True):
        text = text.replace(f"server {name}", f"server {address}", 1)
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{listen_port};")
    text = text.replace("/tmp/", f"{prefix}/")
    return text


class NginxProcess:
    """nginx in the foreground with a rendered ``deploy/nginx.conf``."""

    def __init__(self, upstreams: list[str], workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        conf = render_nginx_conf(REPO_ROOT / "deploy" / "nginx.conf", self.port, upstreams, workdir)
        self.conf_path = workdir / "nginx.conf"
        self.conf_path.write_text(conf)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> NginxProcess:
        command = ["nginx", "-p", str(self.workdir), "-c", str(self.conf_path), "-g", "daemon off;"]
        if os.geteuid() == 0:
            # Workers of a root master run as "nobody"; let them use the temp paths.
            self.workdir.chmod(0o777)
        with open(self.workdir / "error.log", "wb") as log:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        wait_for(self.url + "/healthz", timeout=30)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
