"""Failures as the load balancer's clients see them: nginx (deploy/nginx.conf) in front of two
replicas, one a single process and one with two workers (``GAN_WORKERS=2``), under a steady
load of every kind of request, each one counted (tests/integration/mixed_load.py).

1. A new model version published into the shared repository (a copy renamed into place): both
   replicas load it, warm it up and switch to it.
2. A rolling restart (SIGTERM, exit 0, start again, ready, traffic) of both replicas.
3. A worker of the two-worker replica is killed (SIGKILL, as the OOM killer would): its
   supervisor stops the other worker and exits 137; nginx retries on the other replica what
   the dead worker held and what the stopping replica refuses.

Each case ends with no failed request: every request is answered 200 with the body its route
promises. The tests share one cluster and run in this order, so that none restarts a replica
the one before left stopped (each starts what is stopped, to run alone). The replicas serve
``tinyc`` (tests/conftest.py's ``completion_models``: a tiny trained model with an encoder),
so /complete is part of the load.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.mixed_load import MixedLoad, ModelInfo
from tests.integration.processes import NginxProcess, ServiceProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.extended,  # about 50 s: `make test-extended` (CI runs it after `make test`)
    pytest.mark.skipif(
        shutil.which("nginx") is None,
        reason="nginx is not installed (apt-get install nginx-light; .ci/run installs it)",
    ),
]

MODEL = "tinyc"
# A short drain (nginx retries what a stopping replica refuses), a fast repository scan, and few
# batch sizes to warm up (each version is warmed up at 1, 2, 4 and 8 rows).
ENV = {"GAN_DRAIN_SECONDS": "1", "GAN_POLL_SECONDS": "0.5", "GAN_MAX_BATCH_SIZE": "8"}


@dataclass
class Cluster:
    replicas: list[ServiceProcess]  # [0]: one process; [1]: two workers
    nginx: NginxProcess
    workdir: Path
    models: Path
    starts: int = 0

    def start(self, index: int) -> None:
        """Start replica ``index`` (again) with a log of its own; wait until it is ready."""
        self.starts += 1
        log = self.workdir / f"replica-{index}-{self.starts}.log"
        self.replicas[index].start(log_path=log)

    def heal(self) -> None:
        """Start the replicas an earlier test left stopped, so each test starts with both."""
        for index, replica in enumerate(self.replicas):
            if replica.process is None or replica.process.poll() is not None:
                self.start(index)

    def wait_for_traffic(self) -> None:
        """Under load: wait until nginx sends each replica requests (none is resting)."""
        for replica in self.replicas:
            wait_for_traffic(replica, count=5)

    def nginx_log(self) -> list[str]:
        return (self.workdir / "error.log").read_text().splitlines()

    def model(self) -> ModelInfo:
        return ModelInfo.read(self.models / MODEL / "1")


@pytest.fixture(scope="module")
def cluster(completion_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("chaos")
    models = workdir / "models"  # the replicas' shared repository, as a mounted volume is
    shutil.copytree(completion_models / MODEL, models / MODEL)
    replicas = [
        ServiceProcess(models, env=ENV),
        ServiceProcess(models, env={**ENV, "GAN_WORKERS": "2"}),
    ]
    try:
        for index, replica in enumerate(replicas):
            replica.launch(log_path=workdir / f"replica-{index}-0.log")
        for replica in replicas:
            replica.wait_ready()
        upstreams = [f"127.0.0.1:{replica.port}" for replica in replicas]
        with NginxProcess(upstreams, workdir) as nginx:
            yield Cluster(replicas, nginx, workdir, models)
    finally:
        for replica in replicas:
            replica.kill()


def metric_samples(replica: ServiceProcess) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of the replica's /metrics: (name, labels, value)."""
    with urllib.request.urlopen(replica.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def metric(replica: ServiceProcess, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(
        value
        for sample, found, value in metric_samples(replica)
        if sample == name and labels.items() <= found.items()
    )


def model_requests(replica: ServiceProcess) -> float:
    """The requests the replica answered, except for probes and /metrics (the tests' own)."""
    return sum(
        value
        for name, labels, value in metric_samples(replica)
        if name == "gan_http_requests_total"
        and labels["route"] not in ("/metrics", "/readyz", "/healthz")
    )


def wait_for_traffic(replica: ServiceProcess, count: int = 10, timeout: float = 30.0) -> None:
    """Wait until nginx sends the replica requests again (it rests a replica after failures)."""
    start = model_requests(replica)
    deadline = time.monotonic() + timeout
    while model_requests(replica) - start < count:
        assert time.monotonic() < deadline, f"nginx sent no traffic to {replica.url}"
        time.sleep(0.1)


def assert_none_failed(load: MixedLoad) -> None:
    """Every kind of request was sent, and every request was answered 200 with a good body."""
    summary = load.summary()
    assert set(summary) == set(load.model.kinds()), summary
    failures = load.failures()
    assert not failures, f"{len(failures)} failed: {[str(a) for a in failures[:10]]}; {summary}"


def worker_pids(log: Path) -> list[int]:
    found = re.search(r"started 2 workers \(pids (\d+), (\d+)\)", log.read_text())
    assert found, log.read_text()
    return [int(found.group(1)), int(found.group(2))]


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def hold_requests(pid: int, load: MixedLoad, attempts: int = 20) -> tuple[int, float]:
    """Stop worker ``pid`` (SIGSTOP) at a moment it holds requests: the number held and the
    seconds after the stop when they were seen. The workers share one listening socket, so a
    stopped worker accepts no new connection: only the requests it had accepted wait on it.
    Stopped with none, it is let go (SIGCONT) and stopped again a moment later."""
    for _ in range(attempts):
        os.kill(pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        while time.monotonic() < stopped_at + 1.5:
            held = load.waiting_longer_than(0.5)  # the others take under 0.2 s
            if held:
                return held, time.monotonic() - stopped_at
            time.sleep(0.05)
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.1 * random.random())
    raise AssertionError(f"worker {pid} held no request when stopped, {attempts} times")


def publish(models: Path, name: str) -> int:
    """Copy the highest version of ``name`` to the next number, renamed into place at once
    (as the README's Operations section says to publish a copied model); the new number."""
    versions = sorted(int(p.name) for p in (models / name).iterdir() if p.name.isdigit())
    new = versions[-1] + 1
    staging = models / name / f".new-{new}"
    shutil.copytree(models / name / str(versions[-1]), staging)
    meta = json.loads((staging / "model.json").read_text())
    (staging / "model.json").write_text(json.dumps({**meta, "version": new}))
    staging.rename(models / name / str(new))
    return new


def serves(replica: ServiceProcess, version: int) -> bool:
    """Whether every worker of the replica serves ``version`` of the model (the version before
    it stays served too, under the default GAN_VERSION_POLICY of the two latest)."""
    served = {
        labels["version"]: value
        for name, labels, value in metric_samples(replica)
        if name == "gan_model_version_served" and labels["model"] == MODEL
    }
    return served.get(str(version)) == float(replica.workers)


def test_a_version_published_under_load_is_served_by_both_replicas(cluster: Cluster) -> None:
    cluster.heal()
    with MixedLoad(cluster.nginx.url, cluster.model()) as load:
        cluster.wait_for_traffic()
        old = max(a.version for a in load if a.version is not None)
        published_at = time.monotonic()
        new = publish(cluster.models, MODEL)
        deadline = time.monotonic() + 60
        while not all(serves(replica, new) for replica in cluster.replicas):
            assert time.monotonic() < deadline, "the replicas did not switch within 60 s"
            time.sleep(0.2)
        switched_at = time.monotonic()
        load.wait_for_requests(40)
    assert_none_failed(load)
    versions_before = {a.version for a in load if a.started < published_at}
    versions_after = {a.version for a in load if a.started > switched_at}
    assert versions_before == {old} and versions_after == {new}, (versions_before, versions_after)
    for replica in cluster.replicas:
        assert metric(replica, "gan_images_generated_total", model=MODEL, version=str(new)) > 0
        assert metric(replica, "gan_images_scored_total", model=MODEL, version=str(new)) > 0
    print(
        f"\nnew version: {load.summary()}; switched {switched_at - published_at:.1f} s after "
        f"publishing; slowest {load.slowest():.2f} s"
    )


def test_a_rolling_restart_under_mixed_load_fails_no_request(cluster: Cluster) -> None:
    """One replica at a time: SIGTERM (drain), exit 0, start, ready, traffic from nginx."""
    cluster.heal()
    with MixedLoad(cluster.nginx.url, cluster.model()) as load:
        cluster.wait_for_traffic()
        for index, replica in enumerate(cluster.replicas):
            assert replica.terminate() == 0
            cluster.start(index)
            wait_for_traffic(replica)
            load.wait_for_requests(30)
    assert_none_failed(load)
    print(f"\nrolling restart: {load.summary()}; slowest {load.slowest():.2f} s")


def test_a_killed_worker_stops_its_replica_and_nginx_retries_its_requests(
    cluster: Cluster,
) -> None:
    """The worker is stopped (SIGSTOP) while requests wait on it, then killed, so that the kill
    certainly finds requests in flight on it: nginx must retry them on the other replica."""
    cluster.heal()
    two = cluster.replicas[1]
    assert two.process is not None and two.log_path is not None
    victim, other = worker_pids(two.log_path)
    nginx_lines = len(cluster.nginx_log())
    with MixedLoad(cluster.nginx.url, cluster.model()) as load:
        cluster.wait_for_traffic()
        held, held_after = hold_requests(victim, load)
        os.kill(victim, signal.SIGKILL)
        assert two.process.wait(timeout=30) == 128 + signal.SIGKILL
        assert not alive(other)
        load.wait_for_requests(40)  # the one-process replica alone
    assert_none_failed(load)
    # What nginx saw: the held requests' connections closed before any answer (retried on the
    # other replica), then connections refused while it still tried the stopped replica.
    lines = cluster.nginx_log()[nginx_lines:]
    cut = [line for line in lines if "while reading response header from upstream" in line]
    refused = [line for line in lines if "Connection refused" in line]
    assert cut, lines
    print(
        f"\nkilled worker: {load.summary()}; {held} held by it {held_after:.1f} s after it "
        f"stopped; nginx retried {len(cut)} "
        f"cut and {len(refused)} refused; slowest {load.slowest():.2f} s"
    )
