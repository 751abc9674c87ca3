"""The alert rules parse, pass their promtool unit tests, and use documented metrics."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART_DIR, render
from tests.deploy.metrics import documented_series, metric_names

RULES = CHART_DIR / "files" / "alerts.yaml"
RULE_TESTS = Path(__file__).with_name("alerts.test.yaml")
REQUIRED_ALERTS = {
    "OpenfnInboxErrorRatioHigh",
    "OpenfnInboxLatencyHigh",
    "OpenfnRunnerBacklogGrowing",
    "OpenfnRunsFailing",
    "OpenfnSchedulerTicksMissed",
    "OpenfnProjectionBehind",
    "OpenfnServiceDown",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    """promtool from Debian's prometheus package; CI must have it."""
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is missing: install Debian's prometheus package"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_promtool(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def file_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def rendered_groups(values: dict[str, Any]) -> list[dict[str, Any]]:
    rule = render(values).of_kind("PrometheusRule")[0]
    groups: list[dict[str, Any]] = rule.body["spec"]["groups"]
    return groups


def test_the_rule_file_passes_promtool_check(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", RULES)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_unit_tests_pass(promtool: str) -> None:
    result = run_promtool(promtool, "test", "rules", RULE_TESTS)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rendered_prometheus_rule_passes_promtool_check(
    promtool: str, tmp_path: Path
) -> None:
    values = {
        "prometheusRule": {
            "enabled": True,
            "extraAlertLabels": {"team": "integrations"},
            "disabledAlerts": ["OpenfnConsumerStalled"],
        }
    }
    rule_file = tmp_path / "rendered.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": rendered_groups(values)}))

    result = run_promtool(promtool, "check", "rules", rule_file)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_prometheus_rule_carries_the_file_unchanged() -> None:
    groups = rendered_groups({"prometheusRule": {"enabled": True}})

    assert groups == yaml.safe_load(RULES.read_text())["groups"]


def test_alerts_can_be_left_out_and_labelled() -> None:
    values = {
        "prometheusRule": {
            "enabled": True,
            "disabledAlerts": ["OpenfnServiceDown"],
            "extraAlertLabels": {"team": "integrations"},
        }
    }

    rules = [rule for group in rendered_groups(values) for rule in group["rules"]]

    assert "OpenfnServiceDown" not in {rule["alert"] for rule in rules}
    assert len(rules) == len(file_rules()) - 1
    assert {rule["labels"]["team"] for rule in rules} == {"integrations"}
    assert all(rule["labels"]["severity"] for rule in rules)


def test_the_rules_cover_the_required_alerts() -> None:
    names = {rule["alert"] for rule in file_rules()}

    assert names >= REQUIRED_ALERTS


def test_every_alert_has_a_unit_test_where_it_fires() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }

    assert fired == {rule["alert"] for rule in file_rules()}


def test_every_alert_has_a_severity_summary_and_description() -> None:
    for rule in file_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


def test_every_alert_uses_only_documented_metrics() -> None:
    known = documented_series()

    for rule in file_rules():
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= known.keys(), f"{rule['alert']}: {names - known.keys()}"


def test_every_alert_is_listed_in_the_chart_readme() -> None:
    readme = (CHART_DIR / "README.md").read_text()

    for rule in file_rules():
        assert f"| `{rule['alert']}` |" in readme, rule["alert"]
