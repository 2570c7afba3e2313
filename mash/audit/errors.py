"""The one error the audit library raises."""

from __future__ import annotations

from mash.errors import MashError


class AuditError(MashError):
    """The audit trail could not be written or read.

    When `AuditLog.append` raises it, the entry is not durable and the caller must not answer
    (fail closed): the agent answers NOT_CHECKED (AUDIT_FAILED) releasing nothing, the broker
    refuses the lookup.
    """
