"""The metrics contract of docs/metrics.md, and the metric names a PromQL query uses."""

from __future__ import annotations

import re
from functools import cache

from tests.deploy.chart import ROOT

METRICS_DOC = ROOT / "docs" / "metrics.md"

_ROW = re.compile(r"^\|\s*`(?P<name>[a-z_:][a-z0-9_:]*)`\s*\|\s*(?P<type>\w+)\s*\|")
_SERIES_SUFFIXES = {
    "counter": ("", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}

# Removed before looking for metric names: what is not one.
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLES = re.compile(r"\$\{[^}]*\}|\$\w+")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_LABEL_LISTS = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)"
)
_DURATIONS = re.compile(r"\b\d+(?:ms|s|m|h|d|w|y)\b")
_NUMBERS = re.compile(r"\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
    }
)


@cache
def documented_metrics() -> dict[str, str]:
    """Metric name → type, from the table of docs/metrics.md."""
    metrics: dict[str, str] = {}
    for line in METRICS_DOC.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            metrics[match["name"]] = match["type"]
    assert metrics, f"no metrics table found in {METRICS_DOC}"
    return metrics


def documented_series() -> dict[str, str]:
    """Every series name a documented metric exposes → the metric's name."""
    series = {"up": "up"}
    for name, kind in documented_metrics().items():
        for suffix in _SERIES_SUFFIXES[kind]:
            series[name + suffix] = name
    return series


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query selects (functions and labels left out)."""
    text = _STRINGS.sub('""', query)
    text = _GRAFANA_VARIABLES.sub(" ", text)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _LABEL_LISTS.sub(" ", text)
    text = _DURATIONS.sub(" ", text)
    text = _NUMBERS.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        is_call = text[match.end() :].lstrip().startswith("(")
        if not is_call and match.group() not in _KEYWORDS:
            names.add(match.group())
    return names
