"""Rendering the Helm chart in deploy/helm with Helm's own library, no cluster."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "deploy" / "helm"
RELEASE = "openfn-stream"
NAMESPACE = "openfn"
OLDEST_KUBERNETES = "1.29.0"

EXAMPLES: dict[str, Path | None] = {
    "default": None,
    "minimal": CHART_DIR / "values-minimal.example.yaml",
    "production": CHART_DIR / "values-production.example.yaml",
}

COMPONENTS = ("inboxGateway", "api", "dispatcher", "runner", "recorder", "scheduler")
MODULES = {
    "inboxGateway": "services.inbox_gateway",
    "api": "services.api",
    "dispatcher": "services.dispatcher",
    "runner": "services.runner",
    "recorder": "services.recorder",
    "scheduler": "services.scheduler",
}


@dataclass(frozen=True)
class Manifest:
    """One object the chart rendered, with the template it came from."""

    template: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.body["metadata"].get("labels") or {})

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.body["metadata"].get("annotations") or {})


@dataclass(frozen=True)
class Rendering:
    """Everything one set of values renders to."""

    manifests: tuple[Manifest, ...]
    notes: str

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind == kind]

    def named(self, kind: str, name: str) -> Manifest:
        found = [m for m in self.of_kind(kind) if m.name == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def pods(self) -> Iterator[tuple[Manifest, dict[str, Any]]]:
        """Every pod spec: of Deployments, Jobs and bare Pods."""
        for manifest in self.manifests:
            if manifest.kind in ("Deployment", "Job"):
                yield manifest, manifest.body["spec"]["template"]["spec"]
            elif manifest.kind == "Pod":
                yield manifest, manifest.body["spec"]


def load_values(path: Path | None) -> dict[str, Any]:
    """The values of an example file, or none for the chart's defaults."""
    if path is None:
        return {}
    values = yaml.safe_load(path.read_text())
    assert isinstance(values, dict)
    return values


def render(values: dict[str, Any]) -> Rendering:
    """Render the chart as `helm install` would; a broken template raises."""
    with helm.Chart.load(CHART_DIR) as chart:
        files = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    manifests: list[Manifest] = []
    notes = ""
    for template, text in sorted(files.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        for body in yaml.safe_load_all(text):
            if body:
                manifests.append(Manifest(template, body))
    return Rendering(tuple(manifests), notes)


@cache
def render_example(example: str) -> Rendering:
    """The rendering of one of EXAMPLES, made once per test session."""
    return render(load_values(EXAMPLES[example]))


def component_name(key: str) -> str:
    """The resource name of a service: inboxGateway → openfn-stream-inbox-gateway."""
    words = "".join(f"-{c.lower()}" if c.isupper() else c for c in key)
    return f"{RELEASE}-{words}"
