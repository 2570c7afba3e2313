"""The README's broker.yaml and client.yaml examples load as they are written: every key is
one the loaders know, with the files they name laid out as the README's table says."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from mash.broker import config as broker_config
from mash.client import ClientConfig
from mash.demo import federation
from tests.helpers import build_federation

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _example(heading: str) -> str:
    """The first ```yaml block after `heading`."""
    start = README.index(heading)
    match = re.compile(r"```yaml\n(.*?)```", re.S).search(README, start)
    assert match, f"no yaml example after {heading!r}"
    return match[1]


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> federation.Federation:
    return build_federation(tmp_path_factory.mktemp("readme") / "fed", ["police", "health"],
                            background=20)


def _lay_out(fed: federation.Federation, site: Path) -> None:
    certs = fed.root / "certs"
    for name in ("ca.pem", "broker-broker.pem", "broker-broker.key", "issuer.pub",
                 "ig-lead.pub", "mash-client.pem", "mash-client.key"):
        (site / "certs").mkdir(parents=True, exist_ok=True)
        shutil.copy(certs / name, site / "certs" / name)
    shutil.copytree(fed.root / "policy", site / "policy")
    shutil.copytree(fed.root / "keys" / "broker", site / "keys" / "broker")
    blind = fed.blind
    shutil.copytree(blind.linkage, site / "keys" / "linkage")
    shutil.copy(blind.directory, site / "keys" / "federation-keys.json")
    shutil.copy(blind.directory.with_name(blind.directory.name + ".sig"),
                site / "keys" / "federation-keys.json.sig")
    shutil.copy(blind.authority_public, site / "keys" / "authority.pub")


def test_the_broker_yaml_example_loads(fed: federation.Federation, tmp_path: Path) -> None:
    _lay_out(fed, tmp_path)
    path = tmp_path / "broker.yaml"
    path.write_text(_example("### broker.yaml"), encoding="utf-8")
    cfg = broker_config.load(path)
    assert cfg.broker_id == "leeds-mash-broker" and sorted(cfg.agencies) == ["health", "police"]
    assert cfg.auth.require_binding and cfg.rate_limit.per_minute == 30
    assert cfg.liveness.missed_heartbeats == 3 and cfg.policy.engine == "rego"


def test_the_client_yaml_example_loads(fed: federation.Federation, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _lay_out(fed, tmp_path)
    home = tmp_path / "home"
    (home / ".mash").mkdir(parents=True)
    token = fed.token()
    (home / ".mash" / "analyst.jwt").write_text(token)
    monkeypatch.setenv("HOME", str(home))
    path = tmp_path / "client.yaml"
    path.write_text(_example("### client.yaml"), encoding="utf-8")
    cfg = ClientConfig.load(path)
    assert cfg.addresses == ["mash-broker.example:7443"]
    assert cfg.token == token  # read from ~/.mash/analyst.jwt
    assert cfg.blind is not None


def test_the_demo_folder_can_be_moved(tmp_path: Path) -> None:
    """`mash demo`'s configs name their files relative to their folder: moved elsewhere, the
    broker's, an agent's and the client's configs still load, from the new place only."""
    from mash.agent import config as agent_config
    from mash.demo import data

    built = tmp_path / "var" / "demo"
    fed = federation.build(built, ["police"], data.write_all(built / "data", background=20),
                           relative_paths=True)
    texts = [fed.broker_config.read_text(), fed.agent_configs["police"].read_text(),
             fed.client_config.read_text(), fed.blind_client_config.read_text()]
    assert all(str(built) not in text for text in texts)  # no absolute path left
    moved = tmp_path / "elsewhere" / "demo"
    moved.parent.mkdir()
    built.rename(moved)
    broker = broker_config.load(moved / "broker.yaml")
    assert broker.policy.bundle == moved / "policy" / "bundle.json"
    assert broker.audit.store == f"sqlite:///{moved / 'audit' / 'broker.db'}"
    agent = agent_config.load(moved / "agent-police.yaml")
    assert agent.sources[0].path.is_relative_to(moved) and agent.sources[0].path.exists()
    assert agent.tls.cert == moved / "certs" / "police-agent.pem"
    client = ClientConfig.load(moved / "client-blind.yaml")
    assert client.tls.ca == moved / "certs" / "ca.pem" and client.blind is not None
    # Positive control: the default (what the tests copy around) names absolute paths.
    absolute = federation.build(tmp_path / "abs", ["police"],
                                data.write_all(tmp_path / "abs" / "data", background=20))
    assert str(absolute.root) in absolute.broker_config.read_text()
