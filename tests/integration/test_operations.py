"""Every service serves metrics Prometheus accepts, and health that means something."""

from __future__ import annotations

import shutil
import subprocess
from functools import partial
from typing import Any

import httpx
import pytest

from devstack.stack import LocalStack
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

EXPECTED = {
    "inbox_gateway": [
        "openfn_inbox_requests_total",
        "openfn_inbox_request_duration_seconds",
    ],
    "dispatcher": ["openfn_dispatcher_messages_total", "openfn_consumer_lag_records"],
    "runner": ["openfn_runner_runs_finished_total", "openfn_runner_workers"],
    "recorder": ["openfn_recorder_events_applied_total"],
    "scheduler": [
        "openfn_scheduler_ticks_fired_total",
        "openfn_scheduler_runs_lost_total",
    ],
    "api": ["process_resident_memory_bytes"],
}


def scrape(platform: LocalStack, service: str) -> str:
    port = platform.ops_ports[service]
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return response.text


def scrape_when_complete(platform: LocalStack, service: str) -> str | None:
    text = scrape(platform, service)
    return text if all(name in text for name in EXPECTED[service]) else None


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_a_services_metrics_pass_promtool(
    platform: LocalStack, referrals: dict[str, Any], service: str
) -> None:
    referral = {"form": "referral", "patient": {"name": "Amina"}, "facility": "Ahero"}
    httpx.post(referrals["inbox_url"], json=referral)
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is installed by scripts/setup.sh"

    text = eventually(partial(scrape_when_complete, platform, service))
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "process_resident_memory_bytes" in text


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_a_running_service_is_alive_and_ready(
    platform: LocalStack, service: str
) -> None:
    port = platform.ops_ports[service]
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
