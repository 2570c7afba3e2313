"""Reading YAML configuration with errors that name the file, the key and the fix.

Every config class reads its section through a `Reader`, which records the keys it consumed so
that a misspelt key is reported instead of silently ignored.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mash.errors import ConfigError
from mash.yamlfile import read_yaml

_MISSING: Any = object()


def load_yaml(path: str | Path) -> Reader:
    """Read a YAML config file (bounded: see mash.yamlfile) as a Reader of its top level."""
    path = Path(path)
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return Reader(data, str(path), path.resolve().parent)


class Reader:
    """A view of one mapping in a config file."""

    def __init__(self, data: Mapping[str, Any], where: str, base_dir: Path) -> None:
        self._data = data
        self._where = where
        self._seen: set[str] = set()
        self.base_dir = base_dir

    def label(self, key: str) -> str:
        return f"{self._where}: {key}"

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.label(key)}: {message}")

    def has(self, key: str) -> bool:
        return key in self._data

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self._seen.add(key)
        if key not in self._data or self._data[key] is None:
            if default is _MISSING:
                raise ConfigError(f"{self.label(key)}: required setting is missing")
            return default
        return self._data[key]

    # The getters are named after the types they read, so inside this class `str`, `int`,
    # `float`, `bool` and `list` name methods: annotations here say `builtins.` explicitly.
    def str(
        self, key: builtins.str, default: Any = _MISSING, choices: tuple[builtins.str, ...] = (),
    ) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(key, f"expected text, got {type(value).__name__}")
        value = str(value).strip()
        if not value:
            raise self.error(key, "must not be empty")
        if choices and value not in choices:
            raise self.error(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def int(
        self, key: builtins.str, default: Any = _MISSING, minimum: builtins.int | None = None,
        maximum: builtins.int | None = None,
    ) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum}, got {value}")
        return value

    def float(
        self, key: builtins.str, default: Any = _MISSING, minimum: builtins.float | None = None,
        maximum: builtins.float | None = None,
    ) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum}, got {value}")
        return float(value)

    def bool(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def path(
        self, key: builtins.str, default: Any = _MISSING, must_exist: builtins.bool = True,
    ) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "expected a file path")
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = self.base_dir / path
        if must_exist and not path.exists():
            raise self.error(key, f"file not found: {path}")
        return path

    def list(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {type(value).__name__}")
        return value

    def str_list(self, key: builtins.str, default: Any = _MISSING) -> Any:
        values = self.list(key, default)
        if values is default and default is not _MISSING:
            return values
        out = []
        for i, item in enumerate(values):
            if not isinstance(item, str) or not item.strip():
                raise self.error(f"{key}[{i}]", "expected non-empty text")
            out.append(item.strip())
        return out

    def mapping(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a mapping, got {type(value).__name__}")
        return dict(value)

    def section(self, key: builtins.str, required: builtins.bool = True) -> Reader:
        value = self.raw(key, _MISSING if required else {})
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a mapping, got {type(value).__name__}")
        return Reader(value, self.label(key), self.base_dir)

    def sections(
        self, key: builtins.str, required: builtins.bool = True,
    ) -> builtins.list[Reader]:
        items = self.list(key, _MISSING if required else [])
        readers = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise self.error(f"{key}[{i}]", "expected a mapping")
            readers.append(Reader(item, self.label(f"{key}[{i}]"), self.base_dir))
        return readers

    def done(self) -> None:
        """Refuse keys nobody read: they are almost always typos."""
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            known = ", ".join(sorted(self._seen)) or "none"
            raise ConfigError(
                f"{self._where}: unknown setting {', '.join(map(repr, unknown))} "
                f"(known here: {known})"
            )
