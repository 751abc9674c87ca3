"""A real Prometheus server scraping the local stack sees runs being counted."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devstack.processes import ManagedProcess, free_port
from devstack.stack import LocalStack
from tests.conftest import LOG_DIR
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def prometheus(platform: LocalStack, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary is not None, "prometheus is installed by scripts/setup.sh"
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": service,
                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
            }
            for service, port in platform.ops_ports.items()
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    server = ManagedProcess(
        name="prometheus",
        argv=[
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        log_path=LOG_DIR / "prometheus.log",
    ).start()
    server.wait_for_port(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def query(prometheus: str, promql: str) -> float | None:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql})
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def runs_finished(prometheus: str) -> float | None:
    # No series exist before the first run; the runner being scraped is zero.
    if query(prometheus, 'up{job="runner"}') != 1:
        return None
    return query(prometheus, "sum(openfn_runner_runs_finished_total) or vector(0)")


def test_prometheus_sees_the_runs_counter_rise_after_a_posted_message(
    prometheus: str, referrals: dict[str, Any]
) -> None:
    before = eventually(lambda: runs_finished(prometheus))

    referral = {"form": "referral", "patient": {"name": "Amina"}, "facility": "Ahero"}
    assert httpx.post(referrals["inbox_url"], json=referral).status_code == 202

    after = eventually(
        lambda: value if (value := runs_finished(prometheus) or 0) > before else None
    )
    assert after >= before + 1
