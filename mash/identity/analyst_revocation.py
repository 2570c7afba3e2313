"""The emergency revocation list for analysts: subjects and token ids refused at once.

A YAML file (`auth.revocation_list`), edited by the agency's administrators:

    subjects: [alice]          # every token of these subjects (per issuer: "ISSUER alice")
    token_ids: [HBr-JNMd...]   # these tokens (jti) only

It is read again whenever it changes (checked at most every `CHECK_SECONDS`), with no
restart. A list that is configured but missing or unreadable refuses every token, saying
why: fail closed.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mash.errors import IdentityError, MashError
from mash.yamlfile import read_yaml

CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class _Entries:
    subjects: frozenset[str]
    token_ids: frozenset[str]


class RevocationList:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._entries: _Entries | None = None
        self._problem = ""
        self._refresh(force=True)

    def _read(self) -> _Entries:
        data = read_yaml(self.path) or {}
        if not isinstance(data, dict) or set(data) - {"subjects", "token_ids"}:
            raise IdentityError(f"{self.path}: give only subjects: [...] and token_ids: [...]")
        lists = []
        for key in ("subjects", "token_ids"):
            value = data.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise IdentityError(f"{self.path}: {key} must be a list of strings")
            lists.append(frozenset(value))
        return _Entries(lists[0], lists[1])

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < CHECK_SECONDS:
            return
        with self._lock:
            self._checked = now
            try:
                st = os.stat(self.path)
            except OSError as exc:
                self._entries, self._stamp = None, None
                self._problem = (f"the analyst revocation list {self.path} cannot be read "
                                 f"({exc.strerror}): refusing every token until it can")
                return
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp == self._stamp:
                return
            try:
                self._entries, self._problem = self._read(), ""
            except MashError as exc:
                self._entries = None
                self._problem = (f"the analyst revocation list is unusable ({exc}): refusing "
                                 "every token until it is fixed")
            self._stamp = stamp

    def check(self, *, issuer: str, subject: str, token_id: str) -> None:
        """IdentityError when the token is revoked, or the list cannot be had."""
        self._refresh()
        entries = self._entries
        if entries is None:
            raise IdentityError(self._problem)
        if subject in entries.subjects or f"{issuer} {subject}" in entries.subjects:
            raise IdentityError("this analyst's access has been revoked (emergency "
                                "revocation list): contact your MASH administrator")
        if token_id in entries.token_ids:
            raise IdentityError("this token has been revoked (emergency revocation list): "
                                "sign in again")
