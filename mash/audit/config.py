"""The `audit:` section of a broker or agent config file.

    audit:
      store: sqlite:///var/audit/broker.db      # or postgresql://mash@db:5432/mash?schema=audit
      writer_id: broker-1                       # this broker instance or agent; unique per store
      hash_key_file: keys/audit-hash.key        # keyed hashes of subjects; >= 32 bytes
      signing_key_file: keys/audit-signing.key  # Ed25519 PEM, signs checkpoints
      trusted_keys: [keys/broker-2-audit.pub]   # optional: other writers' public keys
      checkpoint_every: 100                     # sign the chain head every N entries
      exchange_seconds: 60                      # send the signed head to the other parties
      witness_dir: witness/broker-1             # the others' heads kept here (not in the store)
      witnesses: [/mnt/from-police/witness]     # verify: other parties' witness directories
      write_timeout_seconds: 5                  # wait at most this for another writer's lock
      retention:                                # optional; without it nothing is purged
        default_days: 2190                      # entries without a listed agreement
        agreements: {mou-police-csc: 730}

Relative paths are relative to the config file. `mash audit keygen` creates the two keys.
`AuditConfig` is a plain value (pydantic, mash.config): the key files are read by `AuditKeys`,
as the broker, agent or console starts (or an audit command runs).
Several brokers sharing one PostgreSQL store share the hash key (so search finds all their
entries) and list each other's public keys in `trusted_keys` (or share the signing key).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import BeforeValidator, ConfigDict, ValidationInfo, model_validator

from mash.audit.checkpoint import Signer, Verifier, load_public_key
from mash.audit.errors import AuditError
from mash.audit.exchange import HeadExchange
from mash.audit.log import AuditLog, check_writer_id
from mash.audit.retention import RetentionPolicy
from mash.audit.store import AuditStore, open_store
from mash.audit.subject_hash import SubjectHasher
from mash.audit.witness import WitnessFiles
from mash.config import (
    ConfigModel,
    File,
    Invalid,
    NewFile,
    Text,
    base_dir,
    load_section,
    located,
    number,
    resolve,
    text_list,
    whole,
)
from mash.errors import ConfigError

SECTION = "audit"


def _store_url(value: Any, info: ValidationInfo) -> str:
    url = value if isinstance(value, str) else ""
    if not url.strip():
        raise Invalid(f"expected a store URL, got {type(value).__name__}")
    url = url.strip()
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from mash.audit.sqlite_store import sqlite_path

        try:
            return f"sqlite:///{sqlite_path(url, base_dir(info))}"
        except AuditError as exc:
            raise Invalid(str(exc)) from None
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        from mash.audit.postgres_store import parse_url

        try:
            parse_url(url)
        except AuditError as exc:
            raise Invalid(str(exc)) from None
        return url
    raise Invalid(f"{scheme!r} is not supported: use sqlite:///path.db or "
                  "postgresql://user@host/db")


def _writer_id(value: str) -> str:
    try:
        return check_writer_id(value)
    except AuditError as exc:
        raise Invalid(str(exc)) from None


def _paths(value: Any, info: ValidationInfo) -> tuple[Path, ...]:
    """A list of paths (relative: to the config file); existence is checked when read."""
    if isinstance(value, list | tuple):
        value = [str(v) if isinstance(v, Path) else v for v in value]
    out = []
    for i, name in enumerate(text_list(value)):
        try:
            out.append(resolve(name, info, must_exist=False))
        except Invalid as exc:
            raise Invalid(exc.message, key=f"[{i}]") from None
    return tuple(out)


def _retention(value: Any) -> RetentionPolicy:
    """`audit: retention:` (default_days, agreements: {agreement: days})."""
    if isinstance(value, RetentionPolicy):
        return value
    if not isinstance(value, dict):
        raise Invalid(f"expected a mapping, got {type(value).__name__}")
    known = ("agreements", "default_days")
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        raise Invalid(f"unknown setting {', '.join(map(repr, unknown))} "
                      f"(known here: {', '.join(known)})")
    default = value.get("default_days")
    if default is not None:
        try:
            default = whole(1)(default)
        except Invalid as exc:
            raise Invalid(exc.message, key="default_days") from None
    agreements = value.get("agreements") or {}
    if not isinstance(agreements, dict):
        raise Invalid(f"expected a mapping, got {type(agreements).__name__}", key="agreements")
    for agreement, days in agreements.items():
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise Invalid(f"expected a number of days (>= 1), got {days!r}",
                          key=f"agreements.{agreement}")
    return RetentionPolicy(default, {str(k): v for k, v in agreements.items()})


class AuditConfig(ConfigModel):
    """An `audit:` section: a plain value (the key files are read by `AuditKeys`)."""

    model_config = ConfigDict(frozen=True)
    not_settings: ClassVar[frozenset[str]] = frozenset({"where"})

    store: Annotated[str, BeforeValidator(_store_url)]
    writer_id: Annotated[Text, BeforeValidator(_writer_id)]
    hash_key_file: File
    signing_key_file: File
    trusted_keys: Annotated[tuple[Path, ...], BeforeValidator(_paths)] = ()
    checkpoint_every: Annotated[int, BeforeValidator(whole(1, 1_000_000))] = 100
    retention: Annotated[RetentionPolicy, BeforeValidator(_retention)] = RetentionPolicy()
    write_timeout_seconds: Annotated[float, BeforeValidator(number(0.05, 300))] = 5.0
    witness_dir: NewFile | None = None  # default: witness/<writer_id> beside the config file
    exchange_seconds: Annotated[float, BeforeValidator(number(0.2, 86400))] = 60.0
    witnesses: Annotated[tuple[Path, ...], BeforeValidator(_paths)] = ()  # for verify
    # the section, as errors name it (`<file>: audit`): set from the file read
    where: str = SECTION

    @model_validator(mode="after")
    def _defaults(self, info: ValidationInfo) -> AuditConfig:
        context = info.context if isinstance(info.context, dict) else {}
        where = context.get("audit_where") or located(info, SECTION, self.where)
        base = base_dir(info)
        witness_dir = self.witness_dir
        if witness_dir is None and base is not None:
            witness_dir = base / "witness" / self.writer_id
        object.__setattr__(self, "where", where)
        object.__setattr__(self, "witness_dir", witness_dir)
        return self

    @classmethod
    def load(cls, path: Path, section: str = SECTION) -> AuditConfig:
        """Read the `audit:` section of a config file (other sections are left alone)."""
        return load_section(cls, path, section, audit_where=f"{path}: {section}")

    def open_store(self) -> AuditStore:
        return open_store(self.store, write_timeout=self.write_timeout_seconds)


@dataclass(frozen=True)
class AuditKeys:
    """An audit config with its keys read: what a service opens its trail with. Built as
    the broker, agent or console starts (`AuditKeys.read`), never by the config."""

    config: AuditConfig
    hasher: SubjectHasher
    signer: Signer
    trusted: tuple[ed25519.Ed25519PublicKey, ...] = ()

    @classmethod
    def read(cls, config: AuditConfig) -> AuditKeys:
        """The key files, or a one-line ConfigError naming the config file and the key."""
        def key(name: str, read: Any, path: Path) -> Any:
            try:
                return read(path)
            except (ConfigError, AuditError) as exc:
                raise ConfigError(f"{config.where}: {name}: {exc}") from None

        hasher = key("hash_key_file", SubjectHasher.from_file, config.hash_key_file)
        signer = key("signing_key_file", Signer.from_file, config.signing_key_file)
        trusted = tuple(key(f"trusted_keys[{i}]", load_public_key, p)
                        for i, p in enumerate(config.trusted_keys))
        return cls(config, hasher, signer, trusted)

    def open_store(self) -> AuditStore:
        return self.config.open_store()

    def open_log(self) -> AuditLog:
        return AuditLog(self.open_store(), self.config.writer_id, self.signer,
                        self.config.checkpoint_every)

    def witness_files(self) -> WitnessFiles:
        """This writer's witness directory (the other parties' heads, countersigned)."""
        cfg = self.config
        return WitnessFiles(cfg.witness_dir or Path("witness") / cfg.writer_id, self.signer,
                            cfg.writer_id)

    def exchange(self, log: AuditLog) -> HeadExchange:
        """The head exchange over the federation's streams, for this writer's log."""
        return HeadExchange(log, self.witness_files(), self.config.exchange_seconds)

    def verifier(self, extra: tuple[Path, ...] = ()) -> Verifier:
        """Trusts this writer's own key, `trusted_keys` and any extra public key files."""
        verifier = Verifier([self.signer.public_key, *self.trusted])
        for path in extra:
            verifier.add(load_public_key(path))
        return verifier
