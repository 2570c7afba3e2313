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
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import BeforeValidator, model_validator

from mash import signing
from mash.config import (
    ConfigModel,
    Invalid,
    NewFile,
    Text,
    existing_files,
    number,
    one_of,
)
from mash.errors import ConfigError, SignatureError
from mash.logs import get_logger
from mash.policy import bundle as bundle_mod
from mash.policy.decisions import LoadedPolicy
from mash.policy.engine import OPA_EXTRA_MISSING, Engine, OpaEngine, RegoEngine, opa_available
from mash.policy.errors import AgreementError, PolicyError
from mash.policy.serial import SerialState

log = get_logger(__name__)




class OpaConfig(ConfigModel):
    """`policy.opa:` (engine: opa)."""

    url: Text
    timeout_seconds: Annotated[float, BeforeValidator(number(0.05, 30))] = 1.0


class PolicyConfig(ConfigModel):
    """A `policy:` section: the bundle and who may sign it (a plain value: the signers'
    keys are read by the PolicyStore)."""

    bundle: NewFile
    trusted_signers: Annotated[list[Path], BeforeValidator(
        existing_files("name at least one IG lead's public key"))]
    reload_seconds: Annotated[float, BeforeValidator(number(0.1, 3600))] = 5.0
    engine: Annotated[str, BeforeValidator(one_of("rego", "opa"))] = "rego"  # rego | opa
    opa: OpaConfig | None = None
    # The newest bundle serial accepted (mash.policy.serial); None: remembered in memory only.
    # Default, in a service's config: state/<agency or broker id>-policy.json beside it.
    state_file: NewFile | None = None

    @model_validator(mode="after")
    def _engine(self) -> PolicyConfig:
        if self.engine == "opa":
            if self.opa is None:
                raise Invalid("required setting is missing", key="opa")
            if not opa_available():
                raise Invalid(OPA_EXTRA_MISSING, key="engine")
        return self

    def with_state_of(self, name: str, base: Path) -> PolicyConfig:
        """Given no state_file, the default of service `name` (the agency or broker id):
        state/<name>-policy.json in `base`, the config file's directory."""
        if self.state_file is not None or not name:
            return self
        return self.model_copy(update={"state_file": base / f"state/{name}-policy.json"})

    @property
    def opa_url(self) -> str:
        return self.opa.url if self.opa else ""

    @property
    def opa_timeout_seconds(self) -> float:
        return self.opa.timeout_seconds if self.opa else 1.0


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
    signers: list[ed25519.Ed25519PublicKey] = field(init=False)

    def __post_init__(self) -> None:
        self.serials = SerialState(self.config.state_file)
        # the IG leads' keys, read here (as the broker or agent starts), not by the config
        self.signers = [signing.load_public_key(p) for p in self.config.trusted_signers]

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
            verified = signing.verify(raw, sig, self.signers)
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
