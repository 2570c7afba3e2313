"""A separate process appending audit entries: `python -m tests.audit_worker URL WRITER KEYDIR N`.

Prints "seq entry_hash" after each append returns (N = 0: until killed). The kill test SIGKILLs
it right after reading a line; the concurrency tests run several at once.
"""

from __future__ import annotations

import sys
from itertools import count
from pathlib import Path

from mash.audit.checkpoint import Signer
from mash.audit.keys import HASH_KEY, SIGNING_KEY
from mash.audit.log import AuditLog
from mash.audit.store import open_store
from mash.audit.subject_hash import SubjectHasher
from tests.audit_support import entry


def main() -> None:
    url, writer, keydir, total = sys.argv[1:5]
    keys = Path(keydir)
    hasher = SubjectHasher.from_file(keys / HASH_KEY)
    log = AuditLog(open_store(url), writer, Signer.from_file(keys / SIGNING_KEY),
                   checkpoint_every=7)
    print("ready", flush=True)
    numbers = count() if int(total) == 0 else range(int(total))
    for n in numbers:
        appended = log.append(entry(n, hasher))
        print(appended.seq, appended.entry_hash, flush=True)
    log.close()


if __name__ == "__main__":
    main()
