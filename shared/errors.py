"""The platform's error tree: one root, and a ``retriable`` flag consumers read."""

from __future__ import annotations


class PlatformError(Exception):
    """Root of every error the platform raises on purpose."""

    retriable = False


class ConfigurationError(PlatformError):
    """A setting or a deployed document is not what it must be."""


class InvalidProjectError(PlatformError):
    """A project.yaml that cannot be deployed; ``problems`` says where and why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class InvalidBodyError(PlatformError):
    """A message body that does not parse as its content type says it should."""


class UnsupportedContentTypeError(PlatformError):
    """A message body of a content type the inbox does not accept."""


class BrokerUnavailableError(PlatformError):
    """The broker did not acknowledge a write within its deadline."""

    retriable = True


class JobSyntaxError(PlatformError):
    """A job expression that does not compile; ``line`` counts from its first line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"SyntaxError at line {line}: {message}")
        self.line = line
        self.message = message


class JobBuildError(PlatformError):
    """A top-level statement of a job that failed to run or gave no operation.

    ``kind`` names what went wrong, usually the type of the exception raised.
    """

    def __init__(self, line: int, kind: str, message: str) -> None:
        super().__init__(f"{kind} at line {line}: {message}")
        self.line = line
        self.kind = kind
        self.message = message


class AdaptorError(PlatformError):
    """An adaptor that cannot be loaded."""


class UnknownAdaptorError(AdaptorError):
    """A job names an adaptor that no installed package provides."""

    def __init__(self, name: str, installed: list[str]) -> None:
        known = ", ".join(installed) or "none"
        super().__init__(f"unknown adaptor {name!r}; installed adaptors: {known}")
        self.name = name
