"""Every value of the chart is documented in its README and known to its schema.

A README's "Deploy on Kubernetes" section (the chart's, and the project's once
it has one) shows values-minimal.example.yaml, which the other tests render
and validate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from tests.deploy.chart import CHART_DIR, COMPONENTS, EXAMPLES, ROOT, load_values

README = CHART_DIR / "README.md"
DEPLOY_HEADING = "\n## Deploy on Kubernetes\n"
_ROW_KEY = re.compile(r"^\|\s*`(?P<key>[<>\w.]+)`\s*\|")


def documented_keys() -> set[str]:
    """Keys in the first column of the tables under the README's Values heading."""
    text = README.read_text().split("\n## Values\n", 1)[1]
    return {m["key"] for line in text.splitlines() if (m := _ROW_KEY.match(line))}


def value_paths(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, bool]]:
    """Dotted path of every key of values, and whether it is a leaf.

    An empty map is a leaf.
    """
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield path, False
            yield from value_paths(value, f"{path}.")
        else:
            yield path, True


def as_documented(path: str) -> str:
    """A service's key as the README writes it: runner.replicas → <component>.…"""
    head, _, rest = path.partition(".")
    return f"<component>.{rest}" if head in COMPONENTS and rest else path


def test_every_value_has_a_row_in_the_readme() -> None:
    documented = documented_keys()
    values = load_values(CHART_DIR / "values.yaml")

    undocumented = []
    for path, is_leaf in value_paths(values):
        if not is_leaf:
            continue
        ancestors = {path.rsplit(".", n)[0] for n in range(path.count(".") + 1)}
        forms = ancestors | {as_documented(a) for a in ancestors}
        if not forms & documented:
            undocumented.append(path)

    assert undocumented == []


def test_every_row_in_the_readme_names_a_value() -> None:
    values = load_values(CHART_DIR / "values.yaml")
    paths = {path for path, _ in value_paths(values)}
    paths |= {as_documented(path) for path in paths}

    assert documented_keys() - paths == set()


def test_every_value_is_described_by_the_schema() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    values = load_values(CHART_DIR / "values.yaml")

    def walk(node: dict[str, Any], values: dict[str, Any], path: str) -> None:
        if "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        properties = node.get("properties")
        if properties is None:
            return
        for key, value in values.items():
            assert key in properties, f"{path}{key} is not in the schema"
            if isinstance(value, dict):
                walk(properties[key], value, f"{path}{key}.")

    walk(schema, values, "")


def test_every_deploy_section_shows_the_minimal_values_file() -> None:
    minimal = EXAMPLES["minimal"]
    assert minimal is not None
    sections = {
        readme: text.split(DEPLOY_HEADING, 1)[1]
        for readme in (README, ROOT / "README.md")
        if DEPLOY_HEADING in (text := readme.read_text())
    }

    assert README in sections
    for readme, section in sections.items():
        blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
        assert yaml.safe_load(blocks[0]) == load_values(minimal), readme
