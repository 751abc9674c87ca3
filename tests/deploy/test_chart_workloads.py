"""What the rendered workloads promise: services, security, probes, Vault, scaling."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.deploy.chart import (
    CHART_DIR,
    COMPONENTS,
    EXAMPLES,
    MODULES,
    NAMESPACE,
    RELEASE,
    ROOT,
    Manifest,
    Rendering,
    component_name,
    load_values,
    render,
    render_example,
)

STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
VAULT_TOKEN_PATH = "/var/run/secrets/openfn/vault/token"
# `vault write auth/kubernetes/role/<role> … bound_service_account_names=<account>`
VAULT_ROLE_BINDING = re.compile(
    r"auth/kubernetes/role/(\S+) [^\n]*bound_service_account_names=(\S+)"
)
# The Vault role of each service that logs in: the API writes credentials and
# seals signing secrets, runners read credentials, gateways open signing secrets.
VAULT_ROLES = {"api": "api", "runner": "runner", "inboxGateway": "gateway"}
VAULT_USERS = tuple(VAULT_ROLES)


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """Name → value, or → valueFrom, of a container's own variables."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def config_map_env(rendering: Rendering, container: dict[str, Any]) -> dict[str, str]:
    """The variables a container gets from ConfigMaps through envFrom."""
    variables: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        variables |= rendering.named("ConfigMap", name).body["data"]
    return variables


def deployment(rendering: Rendering, key: str) -> Manifest:
    return rendering.named("Deployment", component_name(key))


def main_container(manifest: Manifest) -> dict[str, Any]:
    pod = manifest.body["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    container: dict[str, Any] = pod["containers"][0]
    return container


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_service_runs_in_a_deployment_of_its_own(example: str) -> None:
    rendering = render_example(example)

    modules = {
        m.name: main_container(m)["args"] for m in rendering.of_kind("Deployment")
    }

    assert modules == {component_name(k): [MODULES[k]] for k in COMPONENTS}


def test_every_service_module_the_chart_starts_exists() -> None:
    for module in MODULES.values():
        path = ROOT / module.replace(".", "/") / "__main__.py"
        assert path.is_file(), f"{module} has no __main__.py"


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_service_has_its_own_account_budget_policy_and_service(
    example: str,
) -> None:
    rendering = render_example(example)
    names = {component_name(k) for k in COMPONENTS}

    for kind in ("ServiceAccount", "PodDisruptionBudget", "NetworkPolicy", "Service"):
        rendered = {m.name for m in rendering.of_kind(kind)}
        assert names <= rendered, kind
    for manifest in rendering.of_kind("Deployment"):
        pod = manifest.body["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == manifest.name


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_object_carries_the_standard_labels(example: str) -> None:
    for manifest in render_example(example).manifests:
        missing = [k for k in STANDARD_LABELS if k not in manifest.labels]
        assert missing == [], f"{manifest.kind} {manifest.name}"
        assert manifest.labels["app.kubernetes.io/instance"] == RELEASE


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_pod_is_locked_down(example: str) -> None:
    for manifest, pod in render_example(example).pods():
        where = f"{manifest.kind} {manifest.name}"
        assert pod["automountServiceAccountToken"] is False, where
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] != 0, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in containers(pod):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            assert context["seccompProfile"]["type"] == "RuntimeDefault", where


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_service_pod_has_a_size_limited_tmp(example: str) -> None:
    for manifest, pod in render_example(example).pods():
        if manifest.kind == "Pod":
            continue
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["tmp"]["emptyDir"]["sizeLimit"]
        for container in containers(pod):
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts["/tmp"] == "tmp", manifest.name


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_service_is_probed_on_its_ops_port(example: str) -> None:
    for manifest in render_example(example).of_kind("Deployment"):
        container = main_container(manifest)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}

        assert ports["ops"] == 9000
        assert container["livenessProbe"]["httpGet"] == {
            "path": "/healthz",
            "port": "ops",
        }
        assert container["readinessProbe"]["httpGet"] == {
            "path": "/readyz",
            "port": "ops",
        }
        assert container["startupProbe"]["httpGet"]["port"] == "ops"


def test_the_runner_keeps_runs_in_a_size_limited_empty_dir() -> None:
    manifest = deployment(render_example("default"), "runner")
    pod = manifest.body["spec"]["template"]["spec"]
    container = main_container(manifest)

    tmpdir = env_of(container)["TMPDIR"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}

    assert volumes[mounts[tmpdir]]["emptyDir"]["sizeLimit"] == "1Gi"


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_api_the_runners_and_the_gateway_log_in_to_vault_with_kubernetes_auth(
    example: str,
) -> None:
    rendering = render_example(example)

    for key in COMPONENTS:
        manifest = deployment(rendering, key)
        container = main_container(manifest)
        settings = config_map_env(rendering, container) | env_of(container)
        if key not in VAULT_USERS:
            assert "OPENFN_VAULT_AUTH_METHOD" not in settings, key
            continue
        pod = manifest.body["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        token = volumes["vault-token"]["projected"]["sources"][0]
        assert settings["OPENFN_VAULT_AUTH_METHOD"] == "kubernetes"
        assert settings["OPENFN_VAULT_KUBERNETES_ROLE"] == f"openfn-{VAULT_ROLES[key]}"
        assert settings["OPENFN_VAULT_KUBERNETES_JWT_PATH"] == VAULT_TOKEN_PATH
        assert f"{mounts['vault-token']}/{token['serviceAccountToken']['path']}" == (
            VAULT_TOKEN_PATH
        )
        assert token["serviceAccountToken"]["audience"] == "vault"
        assert settings["OPENFN_VAULT_TRANSIT_MOUNT"] == "transit"
        assert settings["OPENFN_VAULT_INBOX_KEY"] == "openfn-inbox"


def test_each_vault_user_reads_its_role_from_its_key_of_the_existing_secret() -> None:
    rendering = render({"vault": {"existingSecret": "vault-roles"}})

    for key, role in VAULT_ROLES.items():
        settings = env_of(main_container(deployment(rendering, key)))
        assert settings["OPENFN_VAULT_KUBERNETES_ROLE"] == {
            "secretKeyRef": {"name": "vault-roles", "key": f"vault-role-{role}"}
        }, key


def test_the_readme_binds_each_vault_role_to_its_service_account() -> None:
    readme = (CHART_DIR / "README.md").read_text().replace("\\\n", " ")
    bindings = dict(VAULT_ROLE_BINDING.findall(readme))
    rendering = render_example("default")

    for key in VAULT_USERS:
        manifest = deployment(rendering, key)
        role = env_of(main_container(manifest))["OPENFN_VAULT_KUBERNETES_ROLE"]
        account = manifest.body["spec"]["template"]["spec"]["serviceAccountName"]
        assert bindings.get(role) == account, key
        assert rendering.named("ServiceAccount", account).labels, key


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_referenced_config_map_and_secret_is_rendered_or_given(
    example: str,
) -> None:
    rendering = render_example(example)
    given = {
        "default": set(),
        "minimal": {"openfn-database"},
        "production": {"openfn-database", "openfn-kafka", "kafka-ca", "vault-ca"},
    }[example]
    rendered = {
        m.name for m in rendering.manifests if m.kind in ("Secret", "ConfigMap")
    }

    referenced = set()
    for _, pod in rendering.pods():
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                referenced.add(volume["secret"]["secretName"])
        for container in containers(pod):
            for source in container.get("envFrom", []):
                referenced.add(source["configMapRef"]["name"])
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add(ref["name"])

    assert referenced - rendered == given


def test_the_minimal_example_reads_the_database_url_from_its_secret() -> None:
    rendering = render_example("minimal")

    for manifest, pod in rendering.pods():
        for container in containers(pod):
            if manifest.kind == "Pod":
                continue
            url = env_of(container)["OPENFN_DATABASE_URL"]["secretKeyRef"]
            assert url == {"name": "openfn-database", "key": "database-url"}
    assert rendering.of_kind("Secret") == []


def test_the_migration_job_migrates_then_creates_topics_before_install() -> None:
    rendering = render_example("default")
    job = rendering.named("Job", f"{RELEASE}-migration")
    pod = job.body["spec"]["template"]["spec"]

    commands = [c["command"] + c["args"] for c in containers(pod)]
    hooks = {
        m.kind: m.annotations
        for m in rendering.manifests
        if m.name == f"{RELEASE}-migration"
    }

    assert commands == [["openfn", "migrate"], ["openfn", "topics"]]
    assert set(hooks) == {"Job", "Secret", "ServiceAccount"}
    for kind, hook in hooks.items():
        assert hook["helm.sh/hook"] == "pre-install,pre-upgrade", kind
    assert int(hooks["Secret"]["helm.sh/hook-weight"]) < int(
        hooks["Job"]["helm.sh/hook-weight"]
    )
    assert pod["serviceAccountName"] == f"{RELEASE}-migration"


def test_the_production_example_secures_kafka_with_tls_and_sasl() -> None:
    rendering = render_example("production")
    config = rendering.named("ConfigMap", f"{RELEASE}-config").body["data"]
    runner = main_container(deployment(rendering, "runner"))

    password = env_of(runner)["OPENFN_KAFKA_SASL_PASSWORD"]["secretKeyRef"]

    assert config["OPENFN_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["OPENFN_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert config["OPENFN_KAFKA_SSL_CA_LOCATION"] == "/etc/openfn/kafka-ca/ca.crt"
    assert password == {"name": "openfn-kafka", "key": "kafka-sasl-password"}


def test_keda_scales_the_runners_on_their_lag() -> None:
    rendering = render_example("production")
    scaled = rendering.named("ScaledObject", component_name("runner")).body["spec"]
    runner = deployment(rendering, "runner").body["spec"]

    trigger = scaled["triggers"][0]

    assert scaled["scaleTargetRef"]["name"] == component_name("runner")
    assert scaled["minReplicaCount"] == 3
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == "openfn-runner"
    assert trigger["metadata"]["topic"] == "openfn.run-requests"
    assert trigger["metadata"]["sasl"] == "scram_sha512"
    assert trigger["metadata"]["tls"] == "enable"
    assert "replicas" not in runner
    hpas = {m.name for m in rendering.of_kind("HorizontalPodAutoscaler")}
    assert component_name("runner") not in hpas
    assert component_name("inboxGateway") in hpas


def test_the_production_example_exposes_the_inbox_and_the_api() -> None:
    rendering = render_example("production")

    hosts = {
        m.name: [rule["host"] for rule in m.body["spec"]["rules"]]
        for m in rendering.of_kind("Ingress")
    }
    gateway = rendering.named("Ingress", component_name("inboxGateway"))
    backend = gateway.body["spec"]["rules"][0]["http"]["paths"][0]["backend"]

    assert hosts == {
        component_name("inboxGateway"): ["inbox.example.org"],
        component_name("api"): ["openfn.example.org"],
    }
    assert backend["service"] == {
        "name": component_name("inboxGateway"),
        "port": {"name": "http"},
    }


def test_the_service_monitor_scrapes_every_ops_port() -> None:
    rendering = render_example("production")
    monitor = rendering.of_kind("ServiceMonitor")[0].body["spec"]
    selector = monitor["selector"]["matchLabels"]

    selected = [
        m for m in rendering.of_kind("Service") if selector.items() <= m.labels.items()
    ]

    assert {m.name for m in selected} == {component_name(k) for k in COMPONENTS}
    for service in selected:
        assert "ops" in {p["name"] for p in service.body["spec"]["ports"]}
    assert monitor["endpoints"][0]["port"] == "ops"


def test_runners_may_not_reach_the_cloud_metadata_address() -> None:
    for example in EXAMPLES:
        rendering = render_example(example)
        policy = rendering.named("NetworkPolicy", component_name("runner"))

        blocks = [
            peer["ipBlock"]
            for rule in policy.body["spec"]["egress"]
            for peer in rule.get("to", [])
            if "ipBlock" in peer
        ]

        assert blocks
        for block in blocks:
            if block["cidr"] == "0.0.0.0/0":
                assert "169.254.169.254/32" in block["except"], example


def test_only_the_api_runners_and_gateway_may_reach_vault() -> None:
    rendering = render_example("default")

    for key in COMPONENTS:
        policy = rendering.named("NetworkPolicy", component_name(key))
        ports = {
            port["port"]
            for rule in policy.body["spec"]["egress"]
            for port in rule.get("ports", [])
        }
        assert (8200 in ports) == (key in VAULT_USERS), key


def test_the_helm_test_pod_asks_the_gateway_whether_it_is_ready() -> None:
    rendering = render_example("default")
    pod = rendering.of_kind("Pod")[0]

    command = pod.body["spec"]["containers"][0]["command"]

    assert pod.annotations["helm.sh/hook"] == "test"
    assert command[-1] == f"http://{component_name('inboxGateway')}:8000/readyz"


def test_the_notes_tell_the_operator_where_the_inbox_is() -> None:
    default = render_example("default").notes
    production = render_example("production").notes

    assert f"{component_name('inboxGateway')}.{NAMESPACE}.svc:8000/inbox/" in default
    assert "port-forward" in default
    assert "POST https://inbox.example.org/inbox/<inbox id>" in production


def test_the_notes_tell_the_operator_how_to_sign_in_to_the_console() -> None:
    notes = render_example("default").notes

    assert "openfn admin set-password admin" in notes
    assert "http://127.0.0.1:8001/console" in notes


def test_the_api_hands_out_inbox_urls_of_the_gateway_ingress() -> None:
    values = yaml.safe_load(
        """
        inboxGateway:
          ingress:
            enabled: true
            hosts: [{host: in.example.net, paths: [{path: /inbox, pathType: Prefix}]}]
            tls: [{secretName: in-tls, hosts: [in.example.net]}]
        """
    )
    config = render(values).named("ConfigMap", f"{RELEASE}-config").body["data"]

    assert config["OPENFN_INBOX_PUBLIC_URL"] == "https://in.example.net"


def test_console_cookies_are_secure_when_the_api_ingress_has_tls() -> None:
    with_tls = yaml.safe_load(
        """
        api:
          ingress:
            enabled: true
            hosts: [{host: openfn.example.net, paths: [{path: /, pathType: Prefix}]}]
            tls: [{secretName: api-tls, hosts: [openfn.example.net]}]
        """
    )
    secure = render(with_tls).named("ConfigMap", f"{RELEASE}-config").body["data"]
    plain = render(load_values(None)).named("ConfigMap", f"{RELEASE}-config")

    assert secure["OPENFN_CONSOLE_SECURE_COOKIES"] == "true"
    assert "OPENFN_CONSOLE_SECURE_COOKIES" not in plain.body["data"]


def test_sizes_reach_the_services_as_plain_integers() -> None:
    config = render(load_values(None)).named("ConfigMap", f"{RELEASE}-config")

    assert config.body["data"]["OPENFN_INBOX_MAX_BODY_BYTES"] == "8388608"
    assert config.body["data"]["OPENFN_STATE_MAX_BYTES"] == "10485760"
