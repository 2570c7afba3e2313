"""Field transforms an agreement applies before a value leaves the agency.

Each transform is a small pure function of (value, parameters, context). An unknown
transform name or bad parameters are errors at agreement load time, never at lookup time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mash.errors import ConfigError
from mash.normalise import normalise_postcode, postcode_district, postcode_sector


@dataclass(frozen=True)
class TransformContext:
    hmac_key: bytes = b""
    today: dt.date | None = None


class TransformError(Exception):
    """A value could not be transformed: the field is withheld, with this reason."""


def _parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise TransformError("the recorded value is not a date") from None


def keep(value: str | None, _p: Mapping[str, Any], _c: TransformContext) -> str | None:
    return value


def nullify(_value: str | None, _p: Mapping[str, Any], _c: TransformContext) -> str | None:
    """Release that the field exists but not its value."""
    return None


def constant(_value: str | None, p: Mapping[str, Any], _c: TransformContext) -> str | None:
    return str(p["value"])


def mask(value: str | None, p: Mapping[str, Any], _c: TransformContext) -> str | None:
    if value is None:
        return None
    first, last = int(p.get("first", 0)), int(p.get("last", 0))
    char = str(p.get("char", "*"))
    if first + last >= len(value):
        return char * len(value)
    tail = value[len(value) - last:] if last else ""
    return value[:first] + char * (len(value) - first - last) + tail


def year(value: str | None, _p: Mapping[str, Any], _c: TransformContext) -> str | None:
    return None if value is None else f"{_parse_date(value).year:04d}"


def month(value: str | None, _p: Mapping[str, Any], _c: TransformContext) -> str | None:
    if value is None:
        return None
    d = _parse_date(value)
    return f"{d.year:04d}-{d.month:02d}"


def age_band(value: str | None, p: Mapping[str, Any], c: TransformContext) -> str | None:
    if value is None:
        return None
    born = _parse_date(value)
    today = c.today or dt.date.today()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    bands = list(p.get("bands", DEFAULT_AGE_BANDS))
    lower = [b for b in bands if b <= age]
    if not lower:
        return f"under {bands[0]}"
    lo = lower[-1]
    higher = [b for b in bands if b > age]
    return f"{lo}-{higher[0] - 1}" if higher else f"{lo}+"


def _postcode(value: str | None, part: Callable[[str], str]) -> str | None:
    if value is None:
        return None
    normalised = normalise_postcode(value)
    if normalised is None:
        raise TransformError("the recorded value is not a UK postcode")
    return part(normalised)


def district(value: str | None, _p: Mapping[str, Any], _c: TransformContext) -> str | None:
    return _postcode(value, postcode_district)


def sector(value: str | None, _p: Mapping[str, Any], _c: TransformContext) -> str | None:
    return _postcode(value, postcode_sector)


def keyed_hash(value: str | None, p: Mapping[str, Any], c: TransformContext) -> str | None:
    """HMAC-SHA256 under the agency's key: comparable across answers, not reversible."""
    if value is None:
        return None
    if not c.hmac_key:
        raise TransformError("the agency has no hashing key configured")
    digest = hmac.new(c.hmac_key, value.strip().upper().encode(), hashlib.sha256).hexdigest()
    return digest[: int(p.get("length", 16))]


def bucket(value: str | None, p: Mapping[str, Any], _c: TransformContext) -> str | None:
    """Map a number onto labelled ranges: bounds [0, 50, 90] with labels [low, mid, high]."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise TransformError("the recorded value is not a number") from None
    bounds, labels = list(p["bounds"]), list(p["labels"])
    chosen = None
    for bound, label in zip(bounds, labels, strict=True):
        if number >= bound:
            chosen = label
    if chosen is None:
        raise TransformError("the recorded value is below every bucket")
    return str(chosen)


TRANSFORMS: dict[str, Callable[[str | None, Mapping[str, Any], TransformContext], str | None]] = {
    "keep": keep,
    "nullify": nullify,
    "constant": constant,
    "mask": mask,
    "year": year,
    "month": month,
    "age_band": age_band,
    "district": district,
    "sector": sector,
    "hmac": keyed_hash,
    "bucket": bucket,
}
# "drop" is not applied: a dropped field is reported as withheld, never sent.
TRANSFORM_NAMES = frozenset({*TRANSFORMS, "drop"})
# Transforms that read a date (YYYY-MM-DD): mash.agent.datecheck warns where a source does
# not hold the field as one.
DATE_TRANSFORMS = frozenset({"year", "month", "age_band"})


def validate_params(name: str, params: Mapping[str, Any], where: str) -> None:
    """Raise ConfigError when a transform is unknown or its parameters are wrong."""
    if name not in TRANSFORM_NAMES:
        raise ConfigError(
            f"{where}: unknown transform {name!r} (known: {', '.join(sorted(TRANSFORM_NAMES))})")

    def need(key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in params:
            raise ConfigError(f"{where}: transform {name} needs '{key}'")
        if not isinstance(params[key], kind) or isinstance(params[key], bool):
            raise ConfigError(f"{where}: transform {name}: '{key}' has the wrong type")
        return params[key]

    allowed: dict[str, set[str]] = {
        "constant": {"value"}, "mask": {"first", "last", "char"}, "age_band": {"bands"},
        "hmac": {"length"}, "bucket": {"bounds", "labels"},
    }
    extra = set(params) - allowed.get(name, set())
    if extra:
        raise ConfigError(f"{where}: transform {name} does not take {', '.join(sorted(extra))}")
    if name == "constant":
        need("value", (str, int, float))
    elif name == "mask":
        for key in ("first", "last"):
            if key in params and (not isinstance(params[key], int) or params[key] < 0):
                raise ConfigError(f"{where}: mask '{key}' must be a whole number >= 0")
    elif name == "age_band" and "bands" in params:
        bands = params["bands"]
        if (not isinstance(bands, list) or not bands
                or not all(isinstance(b, int) and b >= 0 for b in bands)
                or bands != sorted(set(bands))):
            raise ConfigError(f"{where}: age_band 'bands' must be rising whole numbers")
    elif name == "hmac" and "length" in params:
        if not isinstance(params["length"], int) or not 8 <= params["length"] <= 64:
            raise ConfigError(f"{where}: hmac 'length' must be 8 to 64")
    elif name == "bucket":
        bounds, labels = need("bounds", list), need("labels", list)
        if len(bounds) != len(labels) or not bounds:
            raise ConfigError(f"{where}: bucket needs as many labels as bounds")
        if not all(isinstance(b, int | float) for b in bounds) or bounds != sorted(bounds):
            raise ConfigError(f"{where}: bucket 'bounds' must be rising numbers")


DEFAULT_AGE_BANDS = (0, 5, 11, 16, 18, 25, 65)


def describe(name: str, params: Mapping[str, Any]) -> str:
    """A validated transform's parameters in words, defaults included ("" when it has none)."""
    if name == "mask":
        first, last = int(params.get("first", 0)), int(params.get("last", 0))
        return (f"first {first} and last {last} character(s) shown, the rest as "
                f"{params.get('char', '*')!r}")
    if name == "bucket":
        bounds, labels = list(params["bounds"]), list(params["labels"])
        return "; ".join(f"from {b}: {label!r}" for b, label in zip(bounds, labels,
                                                                  strict=True)) \
            + "; below the first: withheld"
    if name == "age_band":
        bands = list(params.get("bands", DEFAULT_AGE_BANDS))
        spans = [f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(bands)]
        text = ", ".join([*spans, f"{bands[-1]}+"])
        return f"bands {text}" + ("" if "bands" in params else " (the default)")
    if name == "hmac":
        return f"first {int(params.get('length', 16))} hex characters of the agency's keyed hash"
    if name == "constant":
        return f"always {str(params['value'])!r}"
    return ""


def apply(name: str, value: str | None, params: Mapping[str, Any],
          context: TransformContext) -> str | None:
    """Apply a validated transform. Raises TransformError when the value does not fit."""
    return TRANSFORMS[name](value, params, context)
