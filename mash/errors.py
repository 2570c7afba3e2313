"""Errors that carry a message a person can act on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class MashError(Exception):
    """Base class: str(error) is one readable line for the user."""


class ConfigError(MashError):
    """A configuration file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Problem:
    """One invalid field: its path in the request (``subject.addresses[0].postcode``) and
    what is wrong, in words (the message may quote the value: never log it)."""

    field: str
    message: str


class ValidationError(MashError):
    """A request or subject is malformed: the message says which field and why.

    ``problems`` lists every invalid field found, in the order checked (str(error) is the
    first one's message); ``field`` is the first one's path ("" when no field is named)."""

    def __init__(self, message: str, *, field: str = "",
                 problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[Problem, ...] = tuple(problems) or (Problem(field, message),)
        self.field = field or self.problems[0].field

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> ValidationError:
        """One error for several problems (at least one)."""
        return cls(problems[0].message, field=problems[0].field, problems=problems)


class IdentityError(MashError):
    """A certificate or token could not be used or was refused."""


class SignatureError(MashError):
    """A signed file is unsigned, altered, or signed by a key that is not trusted."""


class Problems:
    """Collects every problem of one request, so that all are reported at once:
    ``check(fn, ...)`` runs one check and keeps what it refused (returning None then)."""

    def __init__(self) -> None:
        self.found: list[Problem] = []

    def add(self, field: str, message: str) -> None:
        self.found.append(Problem(field, message))

    def check(self, fn: Callable[..., T], *args: Any) -> T | None:
        try:
            return fn(*args)
        except ValidationError as exc:
            self.found.extend(exc.problems)
            return None

    def raise_any(self) -> None:
        if self.found:
            raise ValidationError.of(self.found)
