"""Errors that carry a message a person can act on."""

from __future__ import annotations


class MashError(Exception):
    """Base class: str(error) is one readable line for the user."""


class ConfigError(MashError):
    """A configuration file is missing, malformed or inconsistent."""


class ValidationError(MashError):
    """A request or subject is malformed: the message says which field and why."""


class IdentityError(MashError):
    """A certificate or token could not be used or was refused."""


class SignatureError(MashError):
    """A signed file is unsigned, altered, or signed by a key that is not trusted."""
