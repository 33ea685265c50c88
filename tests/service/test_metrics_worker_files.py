"""/metrics of a worker while another worker is creating its metrics files (GAN_WORKERS > 1).

prometheus-client creates each file of a process empty and sizes it a moment later; a /metrics
rendered in between used to fail (500), as tests/integration/test_chaos.py saw while a worker
of a two-worker replica started under load.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families

from service.metrics import METRICS_DIR_ENV, Metrics


def test_a_file_another_worker_has_just_created_is_read_as_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv(METRICS_DIR_ENV, str(tmp_path))
    # prometheus-client picks its value class when imported; a worker imports it with the
    # directory set. Here: files written under the fake pid 201.
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: 201))
    metrics = Metrics()
    metrics.images_generated.labels("mnist", "1").inc(3)
    # Worker 202 has just created its first files (MmapedDict opens, then truncates to size).
    for kind in ("counter", "histogram", "gauge_livesum"):
        (tmp_path / f"{kind}_202.db").touch()

    body, _ = metrics.render()

    found = [
        sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == "gan_images_generated_total"
    ]
    assert found == [3.0]
