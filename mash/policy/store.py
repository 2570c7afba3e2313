"""The policy in force at one broker or agent: verified, compiled, hot-reloaded.

`PolicyStore.reload()` reads the bundle and its signature, verifies the signer, compiles the
bundle and runs the caller's own checks; only then does it replace the policy in force. A
bundle that fails any step never replaces the last good one, and the failure is kept as
`error` so that answers can say why (and so can health checks and logs).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from mash import signing
from mash.config import Reader
from mash.errors import ConfigError, SignatureError
from mash.logs import get_logger
from mash.policy import bundle as bundle_mod
from mash.policy.decisions import LoadedPolicy
from mash.policy.engine import OPA_EXTRA_MISSING, Engine, OpaEngine, RegoEngine, opa_available
from mash.policy.errors import AgreementError, PolicyError
from mash.policy.serial import SerialState

log = get_logger(__name__)


@dataclass
class PolicyConfig:
    bundle: Path
    trusted_signers: list[ed25519.Ed25519PublicKey]
    reload_seconds: float = 5.0
    engine: str = "rego"  # rego | opa
    opa_url: str = ""
    opa_timeout_seconds: float = 1.0
    # The newest bundle serial accepted (mash.policy.serial); None: remembered in memory only.
    state_file: Path | None = None

    @classmethod
    def read(cls, section: Reader, state_name: str | None = None) -> PolicyConfig:
        """`state_name` (the agency or broker id): the default state file is
        state/<state_name>-policy.json beside the config file."""
        signer_files = section.str_list("trusted_signers")
        if not signer_files:
            raise section.error("trusted_signers", "name at least one IG lead's public key")
        signers = []
        for i, name in enumerate(signer_files):
            path = Path(name) if Path(name).is_absolute() else section.base_dir / name
            if not path.exists():
                raise section.error(f"trusted_signers[{i}]", f"file not found: {path}")
            signers.append(signing.load_public_key(path))
        cfg = cls(
            bundle=section.path("bundle", must_exist=False),
            trusted_signers=signers,
            reload_seconds=section.float("reload_seconds", 5.0, minimum=0.1, maximum=3600),
            engine=section.str("engine", "rego", choices=("rego", "opa")),
        )
        default_state = f"state/{state_name}-policy.json" if state_name else ""
        state = section.str("state_file", default_state)
        if state:
            path = Path(state).expanduser()
            cfg.state_file = path if path.is_absolute() else section.base_dir / path
        opa = section.section("opa", required=cfg.engine == "opa")
        if cfg.engine == "opa":
            if not opa_available():
                raise section.error("engine", OPA_EXTRA_MISSING)
            cfg.opa_url = opa.str("url")
            cfg.opa_timeout_seconds = opa.float("timeout_seconds", 1.0, minimum=0.05,
                                                maximum=30)
        opa.done()
        section.done()
        return cfg


@dataclass
class PolicyStore:
    config: PolicyConfig
    # Extra checks a bundle must pass here (e.g. an agent's field mapping); raise to refuse.
    validate: Callable[[bundle_mod.Bundle], None] = lambda _b: None
    current: LoadedPolicy | None = None
    error: str | None = None
    _fingerprint: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    serials: SerialState = field(init=False)

    def __post_init__(self) -> None:
        self.serials = SerialState(self.config.state_file)

    @property
    def revision(self) -> str:
        return self.current.revision if self.current else ""

    def loaded(self) -> LoadedPolicy:
        """The policy in force, or PolicyError saying why there is none (fail closed)."""
        policy = self.current
        if policy is None:
            raise PolicyError(f"no valid policy bundle is loaded: {self.error or 'not yet'}")
        return policy

    def _engine(self, bundle: bundle_mod.Bundle) -> Engine:
        if self.config.engine == "opa":
            return OpaEngine(bundle, self.config.opa_url, self.config.opa_timeout_seconds)
        return RegoEngine(bundle)

    def reload(self) -> bool:
        """Load the bundle if it changed. True when a new revision came into force."""
        path = self.config.bundle
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return self._refuse(f"cannot read {path}: {exc.strerror}")
        sig_path = signing.signature_path(path)
        sig = sig_path.read_bytes() if sig_path.exists() else None
        fingerprint = hashlib.sha256(raw + b"\0" + (sig or b"")).hexdigest()
        if fingerprint == self._fingerprint:
            return False
        try:
            verified = signing.verify(raw, sig, self.config.trusted_signers)
            bundle = bundle_mod.parse(raw, str(path))
            self.serials.check(bundle)  # no rollback to an older bundle
            self.validate(bundle)
            policy = LoadedPolicy(bundle, self._engine(bundle), verified.signer)
            policy.purposes()  # the library answers at all: a smoke test before swapping in
            self.serials.remember(bundle)
        except (AgreementError, PolicyError, ConfigError, SignatureError) as exc:
            self._fingerprint = fingerprint  # don't retry the same bad bytes every poll
            return self._refuse(str(exc))
        with self._lock:
            previous = self.current.revision if self.current else None
            self.current, self.error, self._fingerprint = policy, None, fingerprint
        log.info("policy_loaded", revision=policy.revision, previous=previous,
                 serial=bundle.serial, signer=verified.signer, agreements=len(bundle.agreements),
                 engine=self.config.engine)
        return True

    def _refuse(self, reason: str) -> bool:
        self.error = reason
        log.error("policy_refused", reason=reason,
                  keeping=self.current.revision if self.current else None)
        return False

    async def watch(self, stop: asyncio.Event,
                    on_change: Callable[[], None] | None = None) -> None:
        """Poll for a changed bundle until `stop` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.config.reload_seconds)
            if not stop.is_set() and await asyncio.to_thread(self.reload) and on_change:
                on_change()
