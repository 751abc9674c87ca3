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
