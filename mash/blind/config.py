"""The `blind:` sections of agent.yaml and client.yaml.

Agent:
    blind:
      sealing_keys: [keys/police-sealing.key]   # newest last; older ones kept during rotation
      answer_key: keys/police-answer.key
      linkage_keys: keys/linkage               # folder of linkage-<epoch>.key
      directory: federation-keys.json
      directory_signers: [keys/authority.pub]

Client (the analyst's side): the same without sealing_keys and answer_key.

`BlindAgentConfig` and `BlindClientConfig` are plain values (pydantic, mash.config): the
paths. The keys and the signed directory are read by `BlindAgentKeys` / `BlindClientKeys`, as
the agent or client starts (and by `mash agent check`), errors naming the file and the key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from pydantic import BeforeValidator, ValidationInfo, model_validator

from mash import signing
from mash.blind.directory import Directory, DirectoryConfig
from mash.blind.keys import key_id, load_answer_key, load_linkage_keys, load_sealing_key, raw
from mash.config import ConfigModel, File, existing_files, located
from mash.errors import ConfigError

SECTION = "blind"
T = TypeVar("T")




Signers = Annotated[list[Path], BeforeValidator(
    existing_files("name the key authority's public key"))]


class BlindClientConfig(ConfigModel):
    """client.yaml `blind:` (the analyst's side): the linkage keys and the directory."""

    not_settings: ClassVar[frozenset[str]] = frozenset({"where"})

    linkage_keys: File  # a folder of linkage-<epoch>.key
    directory: File
    directory_signers: Signers
    where: str = SECTION  # the section, as errors name it (`<file>: blind`)

    @model_validator(mode="after")
    def _where(self, info: ValidationInfo) -> Any:
        self.where = located(info, SECTION, self.where)
        return self


class BlindAgentConfig(BlindClientConfig):
    """agent.yaml `blind:`: the client's settings and the agent's own two keys."""

    # newest last; older ones kept during rotation
    sealing_keys: Annotated[list[Path], BeforeValidator(
        existing_files("name at least one sealing key (mash blind keygen)"))]
    answer_key: File


def _read(where: str, key: str, read: Callable[[Path], T], path: Path) -> T:
    try:
        return read(path)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {key}: {exc}") from None


def _directory(cfg: BlindClientConfig) -> DirectoryConfig:
    signers = tuple(_read(cfg.where, f"directory_signers[{i}]", signing.load_public_key, p)
                    for i, p in enumerate(cfg.directory_signers))
    directory = DirectoryConfig(cfg.directory, signers)
    # refuse to start with an unsigned or altered directory
    _read(cfg.where, "directory", lambda _p: directory.load(), cfg.directory)
    return directory


@dataclass(frozen=True)
class LinkageKeys:
    keys: dict[int, bytes]

    def for_epoch(self, epoch: int) -> bytes | None:
        return self.keys.get(epoch)


@dataclass(frozen=True)
class BlindClientKeys:
    """The client's blind keys and verified directory, read as the client starts."""

    linkage: LinkageKeys
    directory: DirectoryConfig

    @classmethod
    def read(cls, cfg: BlindClientConfig) -> BlindClientKeys:
        linkage = LinkageKeys(_read(cfg.where, "linkage_keys", load_linkage_keys,
                                    cfg.linkage_keys))
        return cls(linkage, _directory(cfg))


@dataclass(frozen=True)
class BlindAgentKeys:
    """The agent's blind keys and verified directory, read as the agent starts."""

    sealing: dict[str, x25519.X25519PrivateKey]  # by key id
    answer: ed25519.Ed25519PrivateKey
    linkage: LinkageKeys
    directory: DirectoryConfig

    @classmethod
    def read(cls, cfg: BlindAgentConfig, *, agency: str) -> BlindAgentKeys:
        """The keys, or a one-line ConfigError naming the file and the key; the directory
        must publish this agency's answer key."""
        sealing = {}
        for i, path in enumerate(cfg.sealing_keys):
            key = _read(cfg.where, f"sealing_keys[{i}]", load_sealing_key, path)
            sealing[key_id(raw(key.public_key()))] = key
        answer = _read(cfg.where, "answer_key", load_answer_key, cfg.answer_key)
        linkage = LinkageKeys(_read(cfg.where, "linkage_keys", load_linkage_keys,
                                    cfg.linkage_keys))
        keys = cls(sealing, answer, linkage, _directory(cfg))
        try:
            keys.check(keys.directory.load(), agency)
        except ConfigError as exc:
            raise ConfigError(f"{cfg.where}: answer_key: {exc}") from None
        return keys

    def check(self, directory: Directory, agency: str, on: dt.date | None = None) -> None:
        """The directory must publish this agent's answer key, or no analyst trusts it."""
        on = on or dt.date.today()
        own = key_id(raw(self.answer.public_key()))
        if own not in directory.answer_keys(agency, on):
            raise ConfigError(f"the federation key directory does not list {agency}'s answer "
                              f"key {own} as valid today: publish it before using it")
