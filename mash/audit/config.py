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
Several brokers sharing one PostgreSQL store share the hash key (so search finds all their
entries) and list each other's public keys in `trusted_keys` (or share the signing key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mash.audit.checkpoint import Signer, Verifier, load_public_key
from mash.audit.errors import AuditError
from mash.audit.exchange import HeadExchange
from mash.audit.log import AuditLog, check_writer_id
from mash.audit.retention import RetentionPolicy
from mash.audit.store import AuditStore, open_store
from mash.audit.subject_hash import SubjectHasher
from mash.audit.witness import WitnessFiles
from mash.config import Reader, load_yaml
from mash.errors import ConfigError

SECTION = "audit"


def _store_url(section: Reader) -> str:
    url: str = section.str("store")
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from mash.audit.sqlite_store import sqlite_path

        try:
            return f"sqlite:///{sqlite_path(url, section.base_dir)}"
        except AuditError as exc:
            raise section.error("store", str(exc)) from None
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        from mash.audit.postgres_store import parse_url

        try:
            parse_url(url)
        except AuditError as exc:
            raise section.error("store", str(exc)) from None
        return url
    raise section.error("store", f"{scheme!r} is not supported: use sqlite:///path.db or "
                                 "postgresql://user@host/db")


def _retention(section: Reader) -> RetentionPolicy:
    if not section.has("retention"):
        return RetentionPolicy()
    reader = section.section("retention")
    default = reader.int("default_days", None, minimum=1)
    agreements: dict[str, int] = {}
    for agreement, days in reader.mapping("agreements", {}).items():
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise reader.error(f"agreements.{agreement}", "expected a number of days (>= 1)")
        agreements[str(agreement)] = days
    reader.done()
    return RetentionPolicy(default, agreements)


@dataclass(frozen=True)
class AuditConfig:
    store: str
    writer_id: str
    hasher: SubjectHasher
    signer: Signer
    trusted_keys: tuple[Path, ...] = ()
    checkpoint_every: int = 100
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    write_timeout_seconds: float = 5.0
    witness_dir: Path | None = None  # default: witness/<writer_id> beside the config file
    exchange_seconds: float = 60.0
    witnesses: tuple[Path, ...] = ()  # other parties' witness directories, for verify

    @classmethod
    def read(cls, section: Reader) -> AuditConfig:
        store = _store_url(section)
        writer_id = section.str("writer_id")
        try:
            check_writer_id(writer_id)
        except AuditError as exc:
            raise section.error("writer_id", str(exc)) from None
        hasher = SubjectHasher.from_file(section.path("hash_key_file"))
        signer = Signer.from_file(section.path("signing_key_file"))
        trusted = tuple(_relative(section, p) for p in section.str_list("trusted_keys", []))
        for path in trusted:
            load_public_key(path)
        every = section.int("checkpoint_every", 100, minimum=1, maximum=1_000_000)
        retention = _retention(section)
        write_timeout = section.float("write_timeout_seconds", 5.0, minimum=0.05, maximum=300)
        witness_dir = _relative(section, section.str("witness_dir", f"witness/{writer_id}"))
        exchange = section.float("exchange_seconds", 60.0, minimum=0.2, maximum=86400)
        witnesses = tuple(_relative(section, p) for p in section.str_list("witnesses", []))
        section.done()
        return cls(store, writer_id, hasher, signer, trusted, every, retention, write_timeout,
                   witness_dir, exchange, witnesses)

    @classmethod
    def load(cls, path: Path, section: str = SECTION) -> AuditConfig:
        """Read the `audit:` section of a config file (other sections are left alone)."""
        reader = load_yaml(path)
        if not reader.has(section):
            raise ConfigError(f"{path}: no {section!r} section")
        return cls.read(reader.section(section))

    def open_store(self) -> AuditStore:
        return open_store(self.store, write_timeout=self.write_timeout_seconds)

    def open_log(self) -> AuditLog:
        return AuditLog(self.open_store(), self.writer_id, self.signer, self.checkpoint_every)

    def witness_files(self) -> WitnessFiles:
        """This writer's witness directory (the other parties' heads, countersigned)."""
        return WitnessFiles(self.witness_dir or Path("witness") / self.writer_id, self.signer,
                            self.writer_id)

    def exchange(self, log: AuditLog) -> HeadExchange:
        """The head exchange over the federation's streams, for this writer's log."""
        return HeadExchange(log, self.witness_files(), self.exchange_seconds)

    def verifier(self, extra: tuple[Path, ...] = ()) -> Verifier:
        """Trusts this writer's own key, `trusted_keys` and any extra public key files."""
        verifier = Verifier([self.signer.public_key])
        for path in (*self.trusted_keys, *extra):
            verifier.add(load_public_key(path))
        return verifier


def _relative(section: Reader, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else section.base_dir / path
