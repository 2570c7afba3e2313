"""The federation key directory: each agency's public keys and the linkage key epochs.

Published as one JSON file signed by the federation's key authority (mash.signing), it tells
analysts which key to seal a subject to and which keys may sign an agency's answers, and
every agent which linkage epochs are current. Keys carry validity windows that may overlap,
so a new key is published before the old one retires: rotation without downtime.

    {"format": "mash-federation-keys/1", "version": 3, "issued_at": "...",
     "agencies": {"police": {"sealing": [{"key_id", "public", "not_before", "not_after"}],
                             "answer": [...]}},
     "epochs": [{"epoch": 1, "not_before": "...", "not_after": "..."}]}
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from mash import signing
from mash.blind.keys import b64, key_id, raw, unb64
from mash.errors import ConfigError, SignatureError

FORMAT = "mash-federation-keys/1"


@dataclass(frozen=True)
class PublishedKey:
    key_id: str
    public: bytes
    not_before: dt.date
    not_after: dt.date

    def valid(self, on: dt.date) -> bool:
        return self.not_before <= on <= self.not_after


@dataclass(frozen=True)
class Epoch:
    epoch: int
    not_before: dt.date
    not_after: dt.date


@dataclass(frozen=True)
class Directory:
    version: int
    issued_at: str
    sealing: dict[str, tuple[PublishedKey, ...]]
    answer: dict[str, tuple[PublishedKey, ...]]
    epochs: tuple[Epoch, ...]

    def sealing_key(self, agency: str, on: dt.date) -> tuple[str, x25519.X25519PublicKey]:
        """The newest valid key to seal a subject to `agency` with."""
        valid = [k for k in self.sealing.get(agency, ()) if k.valid(on)]
        if not valid:
            raise ConfigError(f"the key directory has no valid sealing key for {agency}")
        newest = max(valid, key=lambda k: k.not_before)
        return newest.key_id, x25519.X25519PublicKey.from_public_bytes(newest.public)

    def answer_keys(self, agency: str, on: dt.date) -> dict[str, ed25519.Ed25519PublicKey]:
        """Every key that may sign `agency`'s answers today, by key id."""
        return {k.key_id: ed25519.Ed25519PublicKey.from_public_bytes(k.public)
                for k in self.answer.get(agency, ()) if k.valid(on)}

    def current_epoch(self, on: dt.date) -> int:
        valid = [e for e in self.epochs if e.not_before <= on <= e.not_after]
        if not valid:
            raise ConfigError("the key directory has no linkage epoch valid today")
        return max(e.epoch for e in valid)

    def valid_epochs(self, on: dt.date) -> set[int]:
        return {e.epoch for e in self.epochs if e.not_before <= on <= e.not_after}


def _date(value: Any, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"key directory: {where}: {value!r} is not a date") from None


def parse(raw_bytes: bytes) -> Directory:
    try:
        doc = json.loads(raw_bytes)
        if doc.get("format") != FORMAT:
            raise ConfigError(f"not a {FORMAT} key directory")
        sealing: dict[str, tuple[PublishedKey, ...]] = {}
        answer: dict[str, tuple[PublishedKey, ...]] = {}
        for agency, keys in doc["agencies"].items():
            for kind, table in (("sealing", sealing), ("answer", answer)):
                entries = []
                for k in keys[kind]:
                    public = unb64(k["public"])
                    if key_id(public) != k["key_id"]:
                        raise ConfigError(f"key directory: {agency} {kind} key id mismatch")
                    entries.append(PublishedKey(k["key_id"], public,
                                                _date(k["not_before"], agency),
                                                _date(k["not_after"], agency)))
                table[agency] = tuple(entries)
        epochs = tuple(Epoch(int(e["epoch"]), _date(e["not_before"], "epochs"),
                             _date(e["not_after"], "epochs")) for e in doc["epochs"])
        return Directory(int(doc["version"]), str(doc["issued_at"]), sealing, answer, epochs)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the key directory is malformed ({exc})") from None


def load(path: Path, signers: list[ed25519.Ed25519PublicKey]) -> Directory:
    """Read and verify a signed directory; refuses unsigned or altered ones."""
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the key directory ({exc.strerror})") from None
    sig = signing.signature_path(path)
    try:
        signing.verify(raw_bytes, sig.read_bytes() if sig.exists() else None, signers,
                       what="the federation key directory")
    except SignatureError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse(raw_bytes)


def entry(public: bytes, not_before: dt.date, not_after: dt.date) -> dict[str, str]:
    return {"key_id": key_id(public), "public": b64(public),
            "not_before": not_before.isoformat(), "not_after": not_after.isoformat()}


def build(agencies: dict[str, tuple[list[x25519.X25519PublicKey], list[ed25519.Ed25519PublicKey]]],
          epochs: list[tuple[int, dt.date, dt.date]], not_before: dt.date, not_after: dt.date,
          version: int = 1) -> bytes:
    """The directory's canonical bytes (to be signed with mash.signing.sign)."""
    doc = {
        "format": FORMAT, "version": version,
        "issued_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "agencies": {agency: {
            "sealing": [entry(raw(k), not_before, not_after) for k in sealing],
            "answer": [entry(raw(k), not_before, not_after) for k in answer]}
            for agency, (sealing, answer) in sorted(agencies.items())},
        "epochs": [{"epoch": e, "not_before": a.isoformat(), "not_after": b.isoformat()}
                   for e, a, b in epochs],
    }
    return json.dumps(doc, indent=1, sort_keys=True).encode()


@dataclass(frozen=True)
class DirectoryConfig:
    path: Path
    signers: tuple[ed25519.Ed25519PublicKey, ...]
    # The last verified directory, by the (size, mtime) of the file and its signature: an
    # agent consults the directory on every blind query, and re-verifying it each time was
    # file I/O and a signature check on the hot path. Any change to either file re-verifies.
    _verified: dict[str, tuple[tuple[int, ...], Directory]] = field(
        default_factory=dict, compare=False, repr=False)

    def load(self) -> Directory:
        try:
            stamp = tuple(n for p in (self.path, signing.signature_path(self.path))
                          for st in (p.stat(),) for n in (st.st_size, st.st_mtime_ns))
        except OSError:
            return load(self.path, list(self.signers))  # says what is missing
        cached = self._verified.get("current")
        if cached is not None and cached[0] == stamp:
            return cached[1]
        directory = load(self.path, list(self.signers))
        self._verified["current"] = (stamp, directory)
        return directory
