"""The `blind:` sections of agent.yaml and client.yaml.

Agent:
    blind:
      sealing_keys: [keys/police-sealing.key]   # newest last; older ones kept during rotation
      answer_key: keys/police-answer.key
      linkage_keys: keys/linkage               # folder of linkage-<epoch>.key
      directory: federation-keys.json
      directory_signers: [keys/authority.pub]

Client (the analyst's side): the same without sealing_keys and answer_key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from mash.blind.directory import Directory, DirectoryConfig
from mash.blind.keys import key_id, load_answer_key, load_linkage_keys, load_sealing_key, raw
from mash.config import Reader
from mash.errors import ConfigError


@dataclass(frozen=True)
class LinkageKeys:
    keys: dict[int, bytes]

    def for_epoch(self, epoch: int) -> bytes | None:
        return self.keys.get(epoch)


@dataclass(frozen=True)
class BlindClientConfig:
    linkage: LinkageKeys
    directory: DirectoryConfig

    @classmethod
    def read(cls, section: Reader) -> BlindClientConfig:
        linkage = LinkageKeys(load_linkage_keys(section.path("linkage_keys")))
        directory = DirectoryConfig.read(section)
        section.done()
        directory.load()  # refuse to start with an unsigned or altered directory
        return cls(linkage, directory)


@dataclass(frozen=True)
class BlindAgentConfig:
    sealing: dict[str, x25519.X25519PrivateKey]  # by key id
    answer: ed25519.Ed25519PrivateKey
    linkage: LinkageKeys
    directory: DirectoryConfig

    @classmethod
    def read(cls, section: Reader, agency: str) -> BlindAgentConfig:
        paths = section.str_list("sealing_keys")
        if not paths:
            raise section.error("sealing_keys", "name at least one sealing key "
                                "(mash blind keygen)")
        sealing = {}
        for name in paths:
            path = section.base_dir / name
            key = load_sealing_key(path)
            sealing[key_id(raw(key.public_key()))] = key
        answer = load_answer_key(section.path("answer_key"))
        linkage = LinkageKeys(load_linkage_keys(section.path("linkage_keys")))
        directory = DirectoryConfig.read(section)
        section.done()
        cfg = cls(sealing, answer, linkage, directory)
        cfg.check(directory.load(), agency)
        return cfg

    def check(self, directory: Directory, agency: str, on: dt.date | None = None) -> None:
        """The directory must publish this agent's answer key, or no analyst trusts it."""
        on = on or dt.date.today()
        own = key_id(raw(self.answer.public_key()))
        if own not in directory.answer_keys(agency, on):
            raise ConfigError(f"the federation key directory does not list {agency}'s answer "
                              f"key {own} as valid today: publish it before using it")
