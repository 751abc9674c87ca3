"""The Dockerfile's promises: a pinned base, a non-root user, no dev extras."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from tests.deploy.chart import CHART_DIR, ROOT, load_values

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PINNED = re.compile(r"^[\w./-]+(:\d+\.\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def stages() -> list[Stage]:
    """The build stages with their instructions, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            alias = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            found.append(Stage(parts[0], alias))
        else:
            found[-1].instructions.append((keyword, rest.strip()))
    return found


def final(keyword: str) -> list[str]:
    return [rest for key, rest in stages()[-1].instructions if key == keyword]


def test_every_base_image_is_pinned_to_an_exact_version_or_digest() -> None:
    names: set[str] = set()

    for stage in stages():
        if stage.base not in names:
            assert PINNED.match(stage.base), stage.base
            assert "@sha256:" in stage.base or ":" in stage.base, stage.base
        if stage.name:
            names.add(stage.name)


def test_the_image_runs_as_the_non_root_user_the_chart_expects() -> None:
    user = final("USER")[-1]
    uid, _, gid = user.partition(":")
    security = load_values(CHART_DIR / "values.yaml")["podSecurityContext"]

    assert uid.isdigit()
    assert int(uid) != 0
    assert int(uid) == security["runAsUser"]
    assert int(gid) == security["runAsGroup"]


def test_the_entry_point_takes_the_module_the_chart_names() -> None:
    entrypoint = json.loads(final("ENTRYPOINT")[-1])

    assert entrypoint == ["python", "-m"]


def test_python_writes_no_byte_code_at_run_time() -> None:
    assert any("PYTHONDONTWRITEBYTECODE=1" in env for env in final("ENV"))


def test_the_image_installs_the_project_without_extras() -> None:
    installs = [
        rest
        for stage in stages()
        for key, rest in stage.instructions
        if key == "RUN" and "pip install" in rest
    ]

    assert installs
    for command in installs:
        assert "[" not in command, command


def test_the_build_context_keeps_what_the_image_copies() -> None:
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.startswith("!")
    }
    copied = {
        source.rstrip("/")
        for stage in stages()
        for key, rest in stage.instructions
        if key == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    }

    assert "*" in DOCKERIGNORE.read_text().splitlines()
    assert copied <= allowed
