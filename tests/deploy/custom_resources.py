"""Small JSON schemas of the custom resources the chart makes.

kubernetes-validate knows only Kubernetes' own kinds. These schemas cover the
fields of KEDA's ScaledObject and TriggerAuthentication (keda.sh/v1alpha1) and
of the Prometheus Operator's ServiceMonitor and PrometheusRule
(monitoring.coreos.com/v1) that the chart uses, with their types, and refuse
any other field, so a misspelt key fails as it would against the real CRD.
"""

from __future__ import annotations

from typing import Any

import jsonschema

_STRING = {"type": "string", "minLength": 1}
_INTEGER = {"type": "integer", "minimum": 0}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_DURATION = {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d|w|y))+$"}


def _closed(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_METADATA = _closed(
    {
        "name": _STRING,
        "namespace": _STRING,
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    "name",
    "namespace",
)


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _closed(
        {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
        "apiVersion",
        "kind",
        "metadata",
        "spec",
    )


_KAFKA_TRIGGER_METADATA = _closed(
    {
        "bootstrapServers": _STRING,
        "consumerGroup": _STRING,
        "topic": _STRING,
        "lagThreshold": {"type": "string", "pattern": "^[0-9]+$"},
        "activationLagThreshold": {"type": "string", "pattern": "^[0-9]+$"},
        "offsetResetPolicy": {"enum": ["earliest", "latest"]},
        "sasl": {"enum": ["plaintext", "scram_sha256", "scram_sha512"]},
        "tls": {"enum": ["enable", "disable"]},
    },
    "bootstrapServers",
    "consumerGroup",
    "topic",
    "lagThreshold",
)

SCALED_OBJECT = _resource(
    "keda.sh/v1alpha1",
    "ScaledObject",
    _closed(
        {
            "scaleTargetRef": _closed(
                {"apiVersion": _STRING, "kind": _STRING, "name": _STRING}, "name"
            ),
            "minReplicaCount": _INTEGER,
            "maxReplicaCount": {"type": "integer", "minimum": 1},
            "pollingInterval": {"type": "integer", "minimum": 1},
            "cooldownPeriod": _INTEGER,
            "triggers": {
                "type": "array",
                "minItems": 1,
                "items": _closed(
                    {
                        "type": {"const": "kafka"},
                        "metadata": _KAFKA_TRIGGER_METADATA,
                        "authenticationRef": _closed({"name": _STRING}, "name"),
                    },
                    "type",
                    "metadata",
                ),
            },
        },
        "scaleTargetRef",
        "triggers",
    ),
)

TRIGGER_AUTHENTICATION = _resource(
    "keda.sh/v1alpha1",
    "TriggerAuthentication",
    _closed(
        {
            "secretTargetRef": {
                "type": "array",
                "minItems": 1,
                "items": _closed(
                    {
                        "parameter": {
                            "enum": ["username", "password", "ca", "cert", "key"]
                        },
                        "name": _STRING,
                        "key": _STRING,
                    },
                    "parameter",
                    "name",
                    "key",
                ),
            }
        },
        "secretTargetRef",
    ),
)

SERVICE_MONITOR = _resource(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    _closed(
        {
            "namespaceSelector": _closed(
                {"matchNames": {"type": "array", "items": _STRING}}
            ),
            "selector": _closed({"matchLabels": _STRING_MAP}, "matchLabels"),
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": _closed(
                    {
                        "port": _STRING,
                        "path": _STRING,
                        "interval": _DURATION,
                        "scrapeTimeout": _DURATION,
                        "relabelings": {
                            "type": "array",
                            "items": _closed(
                                {
                                    "sourceLabels": {
                                        "type": "array",
                                        "items": {
                                            "type": "string",
                                            "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$",
                                        },
                                    },
                                    "targetLabel": _STRING,
                                    "replacement": {"type": "string"},
                                }
                            ),
                        },
                    },
                    "port",
                ),
            },
        },
        "selector",
        "endpoints",
    ),
)

_RULE = _closed(
    {
        "alert": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "expr": _STRING,
        "for": _DURATION,
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    "alert",
    "expr",
)

PROMETHEUS_RULE = _resource(
    "monitoring.coreos.com/v1",
    "PrometheusRule",
    _closed(
        {
            "groups": {
                "type": "array",
                "minItems": 1,
                "items": _closed(
                    {
                        "name": _STRING,
                        "rules": {"type": "array", "minItems": 1, "items": _RULE},
                    },
                    "name",
                    "rules",
                ),
            }
        },
        "groups",
    ),
)

SCHEMAS = {
    "ScaledObject": SCALED_OBJECT,
    "TriggerAuthentication": TRIGGER_AUTHENTICATION,
    "ServiceMonitor": SERVICE_MONITOR,
    "PrometheusRule": PROMETHEUS_RULE,
}


def validate(body: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless the object fits its kind's schema."""
    jsonschema.validate(body, SCHEMAS[body["kind"]])
