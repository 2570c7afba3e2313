"""Reading YAML configuration with errors that name the file, the key and the fix.

Config files and their sections are pydantic models (`ConfigModel`, read with `read_model`,
`load_model` or `load_section`): plain values, checked as they are read. A misspelt key is
refused with the keys known there, and every error is one line,
`<file>: <section>: <key>: <message>`. Key files and services are never read or built by a
config: the code that starts a service does that, naming the file and key when one is bad.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

from mash.errors import ConfigError, IdentityError
from mash.identity.names import check_agency_id
from mash.yamlfile import read_yaml

# -- pydantic models --------------------------------------------------------------------------
# `read_model` runs a ConfigModel over a file's data and turns pydantic's errors into one
# line: `<file>: <section>: <key>: <message>`. The annotated types below (Text, whole(...),
# File...) phrase their errors in the same words, and a path relative to
# the config file's directory is resolved against it (the directory is the validation
# context's `base_dir`; without one, as when a test builds a model itself, paths are taken
# as given and not checked).

M = TypeVar("M", bound=BaseModel)


class Invalid(ValueError):
    """A validator's problem, in words; `key` (relative to where the validator
    runs: a model validator's section, or a field) says which setting, when not that one."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key


def setting_names(cls: type[BaseModel]) -> list[str]:
    """The keys a model reads (a field's YAML name where it differs from the attribute)."""
    hidden: frozenset[str] = getattr(cls, "not_settings", frozenset())
    names = []
    for name, info in cls.model_fields.items():
        if name in hidden:
            continue
        alias = info.validation_alias
        names.append(alias if isinstance(alias, str) else name)
    return names


class ConfigModel(BaseModel):
    """A config section: unknown keys refused (a typo), `key:` with no value taken as missing.
    `not_settings`: fields set by the loader, never read from the file."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True,
                              populate_by_name=True)
    not_settings: ClassVar[frozenset[str]] = frozenset()
    # keys a model reads into other fields (by `prepare`)
    more_settings: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        if base_dir(info) is None:  # built in code, by attribute names: not a config file
            return data
        known = [*setting_names(cls), *cls.more_settings]
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise Invalid(f"unknown setting {', '.join(map(repr, unknown))} "
                          f"(known here: {', '.join(sorted(known)) or 'none'})", key="")
        return cls.prepare({k: v for k, v in data.items() if v is not None})

    @classmethod
    def prepare(cls, data: dict[Any, Any]) -> dict[Any, Any]:
        """The section's settings (known, None dropped) as the fields take them."""
        return data


def base_dir(info: ValidationInfo) -> Path | None:
    context = info.context
    if isinstance(context, Mapping) and isinstance(context.get("base_dir"), Path):
        return Path(context["base_dir"])
    return None


def located(info: ValidationInfo, section: str,
            default: str) -> str:
    """How errors found later (reading a key file a section names) name the section:
    `<file>: <section>` for a top-level section of the file read (the context's `file`),
    else `default`."""
    context = info.context if isinstance(info.context, Mapping) else {}
    where = context.get("file")
    return f"{where}: {section}" if where else default


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int |
                                                 float):
        raise Invalid(f"expected text, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise Invalid("must not be empty")
    return text


def one_of(*choices: str) -> Callable[[Any], str]:
    """A validator: text that is one of `choices` ."""
    def check(value: Any) -> str:
        text = _text(value)
        if text not in choices:
            raise Invalid(f"{text!r} is not one of {', '.join(choices)}")
        return text
    return check


def whole(minimum: int | None = None,
          maximum: int | None = None) -> Callable[[Any], int]:
    """A validator: a whole number within the bounds."""
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise Invalid(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise Invalid(f"must be at most {maximum}, got {value}")
        return value
    return check


def number(minimum: float | None = None,
           maximum: float | None = None) -> Callable[[Any], float]:
    """A validator: a number within the bounds."""
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"expected a number, got {value!r}")
        if minimum is not None and value < minimum:
            raise Invalid(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise Invalid(f"must be at most {maximum}, got {value}")
        return float(value)
    return check


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {value!r}")
    return value


def resolve(value: Any, info: ValidationInfo, must_exist: bool) -> Path:
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise Invalid("expected a file path")
    path = Path(value).expanduser()
    where = base_dir(info)
    if where is None:
        return path
    if not path.is_absolute():
        path = where / path
    if must_exist and not path.exists():
        raise Invalid(f"file not found: {path}")
    return path


def _file(value: Any, info: ValidationInfo) -> Path:
    return resolve(value, info, must_exist=True)


def _new_file(value: Any, info: ValidationInfo) -> Path:
    return resolve(value, info, must_exist=False)


def text_list(value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        raise Invalid(f"expected a list, got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise Invalid("expected non-empty text", key=f"[{i}]")
        out.append(item.strip())
    return out


def existing_files(what: str) -> Callable[[Any, ValidationInfo], list[Path]]:
    """A validator: a non-empty list of existing files (relative: to the config file)."""
    def check(value: Any, info: ValidationInfo) -> list[Path]:
        if isinstance(value, list | tuple):
            value = [str(v) if isinstance(v, Path) else v for v in value]
        names = text_list(value)
        if not names:
            raise Invalid(what)
        paths = []
        for i, name in enumerate(names):
            try:
                paths.append(resolve(name, info, must_exist=True))
            except Invalid as exc:
                raise Invalid(exc.message, key=f"[{i}]") from None
        return paths
    return check


def _mapping(value: Any) -> dict[Any, Any]:
    if not isinstance(value, Mapping):
        raise Invalid(f"expected a mapping, got {type(value).__name__}")
    return dict(value)


Text = Annotated[str, BeforeValidator(_text)]
Flag = Annotated[bool, BeforeValidator(_flag)]
File = Annotated[Path, BeforeValidator(_file)]  # must exist
NewFile = Annotated[Path, BeforeValidator(_new_file)]  # may not exist yet
TextList = Annotated[list[str], BeforeValidator(text_list)]
AnyMapping = Annotated[dict[Any, Any], BeforeValidator(_mapping)]


def _agency_id(value: str) -> str:
    try:
        check_agency_id(value)
    except IdentityError as exc:
        raise Invalid(str(exc)) from None
    return value


AgencyId = Annotated[Text, AfterValidator(_agency_id)]  # an agency id (mash.identity.names)
LogLevel = Annotated[str, BeforeValidator(one_of("debug", "info", "warning", "error"))]


def _label(where: str, loc: tuple[int | str, ...],
           key: str | None) -> str:
    parts: list[str] = [where]
    for part in (*loc, *((key,) if key else ())):
        text = str(part)
        if isinstance(part, int):
            parts[-1] += f"[{part}]"
        elif text.startswith("["):
            parts[-1] += text
        elif text:
            parts.append(text)
    return ": ".join(parts)


def _message(error: ErrorDetails, where: str) -> str:
    loc = tuple(error["loc"])
    problem = (error.get("ctx") or {}).get("error")
    if isinstance(problem, Invalid):
        return f"{_label(where, loc, problem.key)}: {problem.message}"
    kind = error["type"]
    got = type(error.get("input")).__name__
    if kind == "missing":
        message = "required setting is missing"
    elif kind in ("model_type", "model_attributes_type", "dict_type", "dataclass_type"):
        message = f"expected a mapping, got {got}"
    elif kind in ("list_type", "tuple_type"):
        message = f"expected a list, got {got}"
    elif kind == "extra_forbidden":
        message = "unknown setting"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    return f"{_label(where, loc, None)}: {message}"


def config_error(exc: PydanticValidationError, where: str) -> ConfigError:
    """pydantic's errors as one line: the first (an unknown key before all else: a typo
    also makes the key it meant missing), named `<file>: <section>: <key>: <message>`."""
    errors = exc.errors(include_url=False)
    first = min(errors, key=lambda e: not _is_unknown(e))
    return ConfigError(_message(first, where))


def _is_unknown(error: ErrorDetails) -> bool:
    problem = (error.get("ctx") or {}).get("error")
    return error["type"] == "extra_forbidden" or (
        isinstance(problem, Invalid) and problem.message.startswith("unknown setting"))


def read_model(cls: type[M], data: Any, where: str, base: Path,
               **context: Any) -> M:
    """`data` (one section of the file `where` names) as a `cls`, or the one-line ConfigError.
    The validation context holds `base_dir` (relative paths), `where`, `file` and `context`.
    ConfigErrors raised inside pass through as they are."""
    try:
        return cls.model_validate(data, context={"base_dir": base, "where": where,
                                                 "file": where, **context})
    except PydanticValidationError as exc:
        raise config_error(exc, where) from None


def read_top(path: str | Path) -> Mapping[Any, Any]:
    """A YAML config file's top level (bounded: see mash.yamlfile): a mapping of settings."""
    data = read_yaml(Path(path))
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return data


def load_model(cls: type[M], path: str | Path, **context: Any) -> M:
    """A whole config file as a `cls` (see read_model)."""
    return read_model(cls, read_top(path), str(path), Path(path).resolve().parent,
                      **context)


def load_section(cls: type[M], path: str | Path, section: str,
                 **context: Any) -> M:
    """One top-level section of a config file as a `cls` (the other sections left alone)."""
    top = read_top(path)
    if section not in top:
        raise ConfigError(f"{path}: no {section!r} section")
    return read_model(cls, top[section], f"{path}: {section}", Path(path).resolve().parent,
                      file=str(path), **context)
