"""Tamper-evident audit: who asked, about whom (keyed hashes), why, and what was released.

The API the broker and the agents call:

    from mash.audit import AuditConfig, AuditError, AuditKeys, build

    cfg = AuditConfig.load(path)                      # see mash.audit.config for the keys
    keys = AuditKeys.read(cfg)                        # the key files, read as a service starts
    audit = keys.open_log()                           # AuditLog, thread-safe
    hasher = keys.hasher                              # SubjectHasher

    entry = build.query_entry(lookup_id=..., query_id=..., analyst=analyst, context=ctx,
                              subject=hasher.hashes(subject), answer=answer,
                              record_refs=[hasher.record_ref(source, record_id), ...])
    audit.append(entry)          # durable when it returns; AuditError -> do not answer
    # async code: await audit.append_async(entry)

Modules: entry (what is recorded), subject_hash (keyed hashes), chain (hash links),
checkpoint (Ed25519 signatures), store / sqlite_store / postgres_store (storage), log
(AuditLog), verify, retention, notifications, report (search, CSV/JSON export), build (entries
from protobuf answers), config, keys. The CLI is `mash audit` (mash/cli/audit.py).
"""

from mash.audit.config import AuditConfig, AuditKeys
from mash.audit.entry import AuditEntry, Outcome, Released
from mash.audit.errors import AuditError
from mash.audit.log import Appended, AuditLog, Prepare
from mash.audit.subject_hash import SubjectHasher

__all__ = ["Appended", "AuditConfig", "AuditEntry", "AuditError", "AuditKeys", "AuditLog",
           "Outcome", "Prepare", "Released", "SubjectHasher"]
