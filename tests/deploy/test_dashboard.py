"""The Grafana dashboard loads and draws its panels from documented metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.deploy.chart import CHART_DIR, RELEASE, render_example
from tests.deploy.metrics import documented_metrics, documented_series, metric_names

DASHBOARD = CHART_DIR / "files" / "dashboard.json"
REQUIRED_PANELS = {
    "Inbox requests by outcome",
    "Inbox errors",
    "Gateway latency",
    "Runs by outcome",
    "Run duration",
    "Lag per consumer group",
    "Cron ticks",
    "Tick lateness",
}


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and templating query."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            selector = query.removeprefix("label_values(").rsplit(",", 1)[0]
            yield f"variable {variable['name']}", selector


def test_the_dashboard_has_the_required_panels() -> None:
    titles = {panel["title"] for panel in panels(load_dashboard())}

    assert titles >= REQUIRED_PANELS


def test_every_panel_id_is_unique() -> None:
    ids = [panel["id"] for panel in panels(load_dashboard())]

    assert len(ids) == len(set(ids))


def test_every_query_names_only_documented_metrics() -> None:
    known = documented_series()

    for where, query in queries(load_dashboard()):
        names = metric_names(query)
        assert names, f"{where}: {query}"
        assert names <= known.keys(), f"{where}: {names - known.keys()}"


def test_every_documented_metric_is_on_the_dashboard() -> None:
    known = documented_series()
    shown = {
        known[name]
        for _, query in queries(load_dashboard())
        for name in metric_names(query)
    }

    assert set(documented_metrics()) - shown == set()


def test_the_dashboard_config_map_is_labelled_for_the_grafana_sidecar() -> None:
    config_map = render_example("default").named("ConfigMap", f"{RELEASE}-dashboard")

    assert config_map.labels["grafana_dashboard"] == "1"
    assert json.loads(config_map.body["data"]["openfn-stream.json"]) == (
        load_dashboard()
    )
