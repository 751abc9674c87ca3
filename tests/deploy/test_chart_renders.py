"""The chart lints, renders and validates for the default and example values."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest

from tests.deploy import custom_resources
from tests.deploy.chart import (
    CHART_DIR,
    EXAMPLES,
    OLDEST_KUBERNETES,
    load_values,
    render,
    render_example,
)

NEWEST_KUBERNETES = kubernetes_validate.latest_version()
AUTOSCALED = {
    "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
    "podDisruptionBudget": {"minAvailable": "50%"},
}
# Values that take the template branches the example files leave untouched.
VARIANTS: dict[str, dict[str, Any]] = {
    "mutual TLS": {
        "kafka": {
            "securityProtocol": "SSL",
            "tls": {"caSecret": "kafka-ca", "clientCertSecret": "kafka-client"},
            "clientConfig": {"socket.keepalive.enable": True},
        },
        "runner": {"keda": {"enabled": True, "minReplicas": 0}},
    },
    "SASL in values": {
        "kafka": {
            "securityProtocol": "SASL_PLAINTEXT",
            "sasl": {"mechanism": "PLAIN", "username": "openfn", "password": "pw"},
        },
        "runner": {"keda": {"enabled": True}},
        "vault": {"existingSecret": "vault-roles", "tls": {"caSecret": "vault-ca"}},
    },
    "everything optional": {
        "image": {"digest": "sha256:" + "0" * 64},
        "inboxGateway": {"service": {"type": "LoadBalancer"}} | AUTOSCALED,
        **{key: AUTOSCALED for key in ("api", "dispatcher", "recorder", "scheduler")},
        "networkPolicy": {"enabled": False},
        "serviceMonitor": {"enabled": True, "namespace": "monitoring"},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": False},
        "migration": {"enabled": False},
        "tests": {"enabled": False},
    },
}
CUSTOM_KINDS = set(custom_resources.SCHEMAS)
WARNING = 2


def validate_against_kubernetes(body: dict[str, Any], version: str) -> str | None:
    """The validation error of a Kubernetes object, or None; strict about fields."""
    try:
        kubernetes_validate.validate(body, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return f"{body['kind']} {body['metadata']['name']}: {path}: {error.message}"
    return None


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_chart_lints_without_warnings(example: str) -> None:
    report = helm.lint(
        CHART_DIR,
        load_values(EXAMPLES[example]),
        strict=True,
        kube_version=f"v{OLDEST_KUBERNETES}",
    )

    findings = [m for m in report["messages"] if m["severity"] >= WARNING]
    assert report["errors"] == []
    assert findings == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_values_match_the_schema(example: str) -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        chart.validate_schema(load_values(EXAMPLES[example]))


def test_the_schema_refuses_an_unknown_key() -> None:
    with (
        helm.Chart.load(CHART_DIR) as chart,
        pytest.raises(helm.HelmValuesError, match="replicaz"),
    ):
        chart.validate_schema({"runner": {"replicaz": 3}})


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, NEWEST_KUBERNETES])
@pytest.mark.parametrize("example", EXAMPLES)
def test_every_kubernetes_object_validates_strictly(example: str, version: str) -> None:
    rendering = render_example(example)

    builtin = [m for m in rendering.manifests if m.kind not in CUSTOM_KINDS]
    errors = [validate_against_kubernetes(m.body, version) for m in builtin]

    assert builtin
    assert [e for e in errors if e] == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_custom_resource_matches_its_schema(example: str) -> None:
    for manifest in render_example(example).manifests:
        if manifest.kind in CUSTOM_KINDS:
            custom_resources.validate(manifest.body)


@pytest.mark.parametrize("variant", VARIANTS)
def test_other_values_render_and_validate_strictly(variant: str) -> None:
    values = VARIANTS[variant]
    with helm.Chart.load(CHART_DIR) as chart:
        chart.validate_schema(values)

    rendering = render(values)

    for manifest in rendering.manifests:
        if manifest.kind in CUSTOM_KINDS:
            custom_resources.validate(manifest.body)
        else:
            assert validate_against_kubernetes(manifest.body, OLDEST_KUBERNETES) is None


def test_the_production_example_renders_every_custom_resource() -> None:
    kinds = {m.kind for m in render_example("production").manifests}

    assert kinds >= CUSTOM_KINDS


def test_kinds_outside_the_kubernetes_schemas_are_only_the_known_custom_ones() -> None:
    rendering = render_example("production")
    unknown = set()
    for manifest in rendering.manifests:
        try:
            kubernetes_validate.validate(manifest.body, OLDEST_KUBERNETES, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unknown.add(manifest.kind)

    assert unknown == CUSTOM_KINDS


def test_a_failing_template_fails_the_render() -> None:
    values = {"kafka": {"securityProtocol": "SASL_SSL"}}

    with pytest.raises(helm.HelmRenderError, match=r"kafka\.sasl\.mechanism"):
        render(values)


def test_a_sasl_login_without_a_password_is_refused() -> None:
    values = {
        "kafka": {
            "securityProtocol": "SASL_PLAINTEXT",
            "sasl": {"mechanism": "PLAIN", "username": "openfn"},
        }
    }

    with pytest.raises(helm.HelmRenderError, match=r"kafka\.sasl\.password"):
        render(values)


def test_two_autoscalers_for_the_runners_are_refused() -> None:
    values = {"runner": {"autoscaling": {"enabled": True}, "keda": {"enabled": True}}}

    with pytest.raises(helm.HelmRenderError, match="KEDA"):
        render(values)
