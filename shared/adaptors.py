"""Finding and loading adaptors, the packages registered as ``openfn.adaptors``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType, ModuleType

from shared.errors import AdaptorError, UnknownAdaptorError

ENTRY_POINT_GROUP = "openfn.adaptors"


@dataclass(frozen=True)
class Adaptor:
    """A loaded adaptor.

    Attributes:
        name: The name jobs use for it.
        version: The version of the distribution that provides it.
        operations: What it exports to jobs (its ``__all__``), by name.
    """

    name: str
    version: str
    operations: Mapping[str, object]


def installed_adaptors() -> list[str]:
    """The names of every installed adaptor, sorted."""
    return sorted({entry.name for entry in entry_points(group=ENTRY_POINT_GROUP)})


def adaptor_version(name: str) -> str:
    """The version of an adaptor, without importing it.

    Raises:
        UnknownAdaptorError: No installed package provides the adaptor.
    """
    return _version_of(_entry_point(name))


def load_adaptor(name: str) -> Adaptor:
    """Import an adaptor and collect its operations.

    Raises:
        UnknownAdaptorError: No installed package provides the adaptor.
        AdaptorError: The adaptor failed to import or has no ``__all__``.
    """
    entry = _entry_point(name)
    try:
        module = entry.load()
    except Exception as error:
        message = f"adaptor {name!r} failed to import: {type(error).__name__}: {error}"
        raise AdaptorError(message) from error

    exports = _exports_of(name, module)
    return Adaptor(name, _version_of(entry), MappingProxyType(exports))


def _entry_point(name: str) -> EntryPoint:
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        raise UnknownAdaptorError(name, installed_adaptors())
    return next(iter(found))


def _version_of(entry: EntryPoint) -> str:
    return entry.dist.version if entry.dist is not None else "unknown"


def _exports_of(name: str, module: object) -> dict[str, object]:
    names = getattr(module, "__all__", None)
    if not isinstance(module, ModuleType) or names is None:
        raise AdaptorError(f"adaptor {name!r} is not a module with an __all__")
    return {export: getattr(module, export) for export in names}
