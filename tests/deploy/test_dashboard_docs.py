"""The description of the dashboard in the docs covers every panel it has."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_dashboard_panel_is_described_in_the_docs() -> None:
    dashboard = json.loads((ROOT / "deploy/helm/files/dashboard.json").read_text())
    described = (ROOT / "docs/dashboard.md").read_text()

    titles = [panel["title"] for panel in dashboard["panels"]]

    missing = [
        t for t in titles if f"| {t} |" not in described and f"## {t}" not in described
    ]
    assert missing == []
