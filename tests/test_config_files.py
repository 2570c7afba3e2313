"""agent.yaml and broker.yaml read by pydantic models: plain values, one-line errors naming
the file, the section and the key."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mash.agent import config as agent_config
from mash.agent.service import build_policy
from mash.audit import AuditKeys
from mash.blind.config import BlindAgentKeys
from mash.broker import config as broker_config
from mash.client import ClientConfig, ClientSettings
from mash.config import load_model
from mash.console import config as console_config
from mash.errors import ConfigError
from mash.identity.tokens import AuthConfig, TokenVerifier
from mash.policy import agreements
from mash.policy.errors import AgreementError
from mash.policy.store import PolicyConfig
from tests.console_support import console_config as write_console_config
from tests.helpers import build_federation


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_federation(tmp_path_factory.mktemp("configs"), ["police"], background=20)


def _edit(path: Path, out: Path, change: Any) -> Path:
    cfg = yaml.safe_load(path.read_text())
    change(cfg)
    edited = path.with_name(f"edited-{out.name}-{path.name}")
    edited.write_text(yaml.safe_dump(cfg))
    return edited


def test_the_configs_are_plain_values(fed: Any) -> None:
    agent = agent_config.load(fed.agent_configs["police"])
    broker = broker_config.load(fed.broker_config)
    for cfg in (agent, broker):
        assert isinstance(cfg.auth, AuthConfig) and isinstance(cfg.policy, PolicyConfig)
        assert all(isinstance(p, Path) for p in cfg.policy.trusted_signers)
        assert isinstance(TokenVerifier.from_config(cfg.auth), TokenVerifier)
    assert agent.brokers and agent.heartbeat_seconds > 0 and agent.name.startswith("West Yorkshire")
    assert agent.policy.state_file is not None
    assert agent.policy.state_file.name == "police-policy.json"
    assert broker.rate_limit.per_minute > 0 and broker.liveness.missed_heartbeats == 3


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.update(colour="blue"), r"agent[^:]*\.yaml: unknown setting 'colour' \(known "
                                        r"here: agency, audit, auth, blind, broker, "),
    (lambda c: c["search"].update(max_match=3) if "search" in c else c.update(
        search={"max_match": 3}), r"\.yaml: search: unknown setting 'max_match'"),
    (lambda c: c.update(search={"max_matches": 0}),
     r"\.yaml: search: max_matches: must be at least 1, got 0"),
    (lambda c: c.update(search={"require_any_of": [["name", "shoe_size"]]}),
     r"\.yaml: search: require_any_of\[0\]: unknown evidence shoe_size"),
    (lambda c: c.pop("contact_route"), r"\.yaml: contact_route: required setting is missing"),
    (lambda c: c["tls"].update(reload_seconds="soon"),
     r"\.yaml: tls: reload_seconds: expected a number, got 'soon'"),
    (lambda c: c["broker"].update(identities=["spiffe://mash.exchange/agency/police/agent"]),
     r"\.yaml: broker: identities\[0\]: .* identity, never a broker"),
    (lambda c: c["auth"]["issuers"][0].pop("roles"),
     r"\.yaml: auth: issuers\[0\]: roles: required setting is missing"),
    (lambda c: c["policy"].update(trusted_signers=["nope.pub"]),
     r"\.yaml: policy: trusted_signers\[0\]: file not found: "),
    (lambda c: c["sources"][0].update(encodng="latin-1"),
     r"\.yaml: sources\[0\]: unknown setting 'encodng'"),
    (lambda c: c.update(agency="Police!"), r"\.yaml: agency: "),
    (lambda c: c.update(log_level="loud"),
     r"\.yaml: log_level: 'loud' is not one of debug, info, warning, error"),
])
def test_agent_yaml_errors_are_one_line(fed: Any, tmp_path: Path, change: Any,
                                        message: str) -> None:
    path = _edit(fed.agent_configs["police"], tmp_path, change)
    with pytest.raises(ConfigError) as err:
        agent_config.load(path)
    assert re.search(message, str(err.value)), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.update(deadline_secs=3), r"\.yaml: unknown setting 'deadline_secs'"),
    (lambda c: c.update(deadline_seconds=0), r"\.yaml: deadline_seconds: must be at least 0.1"),
    (lambda c: c.update(rate_limit={"store": "mysql://x"}),
     r"\.yaml: rate_limit: store: expected a PostgreSQL URL"),
    (lambda c: c.update(agencies=[{"id": "police"}, {"id": "police"}]),
     r"\.yaml: agencies\[1\]: id: 'police' is registered twice"),
    (lambda c: c.update(liveness={"missed_heartbeats": 1}),
     r"\.yaml: liveness: missed_heartbeats: must be at least 2, got 1"),
    (lambda c: c.pop("listen"), r"\.yaml: listen: required setting is missing"),
    (lambda c: c["auth"].update(issuers=[]),
     r"\.yaml: auth: issuers: at least one trusted token issuer is required"),
])
def test_broker_yaml_errors_are_one_line(fed: Any, tmp_path: Path, change: Any,
                                         message: str) -> None:
    path = _edit(fed.broker_config, tmp_path, change)
    with pytest.raises(ConfigError) as err:
        broker_config.load(path)
    assert re.search(message, str(err.value)), str(err.value)


def test_key_files_are_read_as_the_agent_starts_not_by_the_config(fed: Any,
                                                                  tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_text("too short")
    path = _edit(fed.agent_configs["police"], tmp_path,
                 lambda c: c.update(hmac_key_file=str(short)))
    cfg = agent_config.load(path)  # a plain value: the key is not read here
    assert cfg.hmac_key_file == short
    with pytest.raises(ConfigError, match="hmac_key_file: the key must be at least 32 bytes"):
        build_policy(cfg)


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["audit"].update(chekpoint_every=5),
     r"\.yaml: audit: unknown setting 'chekpoint_every' \(known here: checkpoint_every, "
     r"exchange_seconds, hash_key_file, "),
    (lambda c: c["audit"].update(exchange_seconds=0),
     r"\.yaml: audit: exchange_seconds: must be at least 0.2, got 0"),
    (lambda c: c["audit"].update(retention={"agreements": {"mou-a": 0}}),
     r"\.yaml: audit: retention: agreements.mou-a: expected a number of days \(>= 1\)"),
])
def test_audit_section_errors_are_one_line(fed: Any, tmp_path: Path, change: Any,
                                           message: str) -> None:
    path = _edit(fed.agent_configs["police"], tmp_path, change)
    with pytest.raises(ConfigError) as err:
        agent_config.load(path)
    assert re.search(message, str(err.value)), str(err.value)


def test_audit_keys_are_read_as_the_service_starts(fed: Any, tmp_path: Path) -> None:
    good = agent_config.load(fed.agent_configs["police"])
    assert AuditKeys.read(good.audit).hasher is not None  # positive control
    bad = tmp_path / "bad-signing.key"
    bad.write_text("not a key")
    path = _edit(fed.agent_configs["police"], tmp_path,
                 lambda c: c["audit"].update(signing_key_file=str(bad)))
    cfg = agent_config.load(path)  # a plain value: the key is not read here
    assert cfg.audit.signing_key_file == bad
    with pytest.raises(ConfigError) as err:
        AuditKeys.read(cfg.audit)
    assert re.match(r"\S*edited-\S*\.yaml: audit: signing_key_file: \S*bad-signing\.key: not an "
                    r"unencrypted PEM private key", str(err.value)), str(err.value)


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["blind"].update(answer_keys="x"),
     r"\.yaml: blind: unknown setting 'answer_keys' \(known here: answer_key, directory, "
     r"directory_signers, linkage_keys, sealing_keys\)"),
    (lambda c: c["blind"].update(sealing_keys=[]),
     r"\.yaml: blind: sealing_keys: name at least one sealing key"),
    (lambda c: c["blind"].update(directory_signers=["nope.pub"]),
     r"\.yaml: blind: directory_signers\[0\]: file not found: "),
])
def test_blind_section_errors_are_one_line(fed: Any, tmp_path: Path, change: Any,
                                           message: str) -> None:
    path = _edit(fed.agent_configs["police"], tmp_path, change)
    with pytest.raises(ConfigError) as err:
        agent_config.load(path)
    assert re.search(message, str(err.value)), str(err.value)


def test_blind_keys_are_read_as_the_agent_starts(fed: Any, tmp_path: Path) -> None:
    good = agent_config.load(fed.agent_configs["police"])
    assert good.blind is not None
    assert BlindAgentKeys.read(good.blind, agency="police").sealing  # positive control
    bad = tmp_path / "bad-answer.key"
    bad.write_text("not a key")
    path = _edit(fed.agent_configs["police"], tmp_path,
                 lambda c: c["blind"].update(answer_key=str(bad)))
    cfg = agent_config.load(path)  # a plain value: the key is not read here
    assert cfg.blind is not None and cfg.blind.answer_key == bad
    with pytest.raises(ConfigError) as err:
        BlindAgentKeys.read(cfg.blind, agency="police")
    assert re.match(r"\S*edited-\S*\.yaml: blind: answer_key: \S*bad-answer\.key: ",
                    str(err.value)), str(err.value)
    with pytest.raises(ConfigError, match=r"blind: answer_key: the federation key directory "
                                          r"does not list health's answer key"):
        BlindAgentKeys.read(good.blind, agency="health")


def test_the_client_yaml_loads(fed: Any) -> None:
    settings = load_model(ClientSettings, fed.blind_client_config)  # a plain value
    assert settings.broker.targets and settings.broker.attempts == 3
    assert settings.blind is not None and settings.token_file is not None
    cfg = ClientConfig.load(fed.blind_client_config)  # the credentials, read as it starts
    assert cfg.token and cfg.blind is not None and cfg.addresses == settings.broker.targets


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.update(tokenfile="x"),
     r"\.yaml: unknown setting 'tokenfile' \(known here: blind, broker, tls, token_file\)"),
    (lambda c: c["broker"].update(retries=2),
     r"\.yaml: broker: unknown setting 'retries' \(known here: address, addresses, attempts, "
     r"identities, server_name\)"),
    (lambda c: c["broker"].update(attempts=11),
     r"\.yaml: broker: attempts: must be at most 10, got 11"),
    (lambda c: c["broker"].update(address="no-port"), r"\.yaml: broker: addresses: "),
    (lambda c: c.update(token_file="gone.jwt"), r"\.yaml: token_file: file not found: "),
    (lambda c: c["blind"].update(linkage_keys="nowhere"),
     r"\.yaml: blind: linkage_keys: file not found: "),
])
def test_client_yaml_errors_are_one_line(fed: Any, tmp_path: Path, change: Any,
                                         message: str) -> None:
    path = _edit(fed.blind_client_config, tmp_path, change)
    with pytest.raises(ConfigError) as err:
        ClientConfig.load(path)
    assert re.search(message, str(err.value)), str(err.value)
    assert "\n" not in str(err.value)


def test_a_bad_blind_directory_is_reported_as_the_client_starts(fed: Any,
                                                                tmp_path: Path) -> None:
    other = tmp_path / "other.pub"
    other.write_bytes(b"not a key")
    path = _edit(fed.blind_client_config, tmp_path,
                 lambda c: c["blind"].update(directory_signers=[str(other)]))
    settings = load_model(ClientSettings, path)  # a plain value: nothing read yet
    assert settings.blind is not None and settings.blind.directory_signers == [other]
    with pytest.raises(ConfigError) as err:
        ClientConfig.load(path)
    assert re.match(r"\S*\.yaml: blind: directory_signers\[0\]: ", str(err.value)), str(err.value)


def _console(fed: Any, change: Any) -> Path:
    cfg = yaml.safe_load(write_console_config(fed).read_text())
    change(cfg)
    path = fed.root / "console-edited.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_the_case_store_is_a_plain_value_opened_as_the_console_starts(fed: Any) -> None:
    cfg = console_config.load(_console(fed, lambda c: None))
    assert cfg.cases is not None and cfg.cases.retention.days == 30  # positive control
    assert cfg.cases.where.endswith("console-edited.yaml: cases")
    assert cfg.cases.audit.where.endswith("console-edited.yaml: cases: audit")
    cfg.cases.open().engine.dispose()
    bad = fed.root / "bad-case.key"
    bad.write_text("not hex")
    cfg = console_config.load(_console(fed, lambda c: c["cases"].update(key_file=str(bad))))
    assert cfg.cases is not None and cfg.cases.key_file == bad  # not read yet
    with pytest.raises(ConfigError) as err:
        cfg.cases.open()
    assert re.match(r"\S*console-edited\.yaml: cases: key_file: \S*bad-case\.key: not a case "
                    r"store key", str(err.value)), str(err.value)


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["cases"].update(retention=3),
     r"console-edited\.yaml: cases: unknown setting 'retention' \(known here: "
     r"ask_again_minutes, audit, follow_up_seconds, key_file, live_poll_seconds, "
     r"retention_days, store\)"),
    (lambda c: c["cases"].update(retention_days=400),
     r"console-edited\.yaml: cases: retention_days: must be at most 365, got 400"),
    (lambda c: c["cases"].update(follow_up_seconds=0.5),
     r"console-edited\.yaml: cases: follow_up_seconds: must be at least 1"),
    (lambda c: c["cases"].update(store="mysql://x"),
     r"console-edited\.yaml: cases: store: expected sqlite:///path\.db or postgresql://"),
    (lambda c: c["cases"]["audit"].update(writer_id="Console!"),
     r"console-edited\.yaml: cases: audit: writer_id: writer id 'Console!'"),
])
def test_case_store_errors_are_one_line(fed: Any, change: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        console_config.load(_console(fed, change))
    assert re.search(message, str(err.value)), str(err.value)
    assert "\n" not in str(err.value)


def test_console_settings_are_a_plain_value_read_as_the_console_starts(fed: Any) -> None:
    path = _console(fed, lambda c: None)
    settings = console_config.read_settings(path)  # nothing it names is read
    assert settings.session.secret_file.name == "console-session.key"
    assert settings.listen_address[0] == "127.0.0.1"
    cfg = console_config.load(path)  # positive control: what the console starts with
    assert len(cfg.session_secret) >= 32 and cfg.audit is not None and cfg.listen_port > 0
    assert isinstance(cfg.auth, TokenVerifier) and cfg.rag_hours["red"] == 4.0
    short = fed.root / "short-session.key"
    short.write_text("short")
    path = _console(fed, lambda c: c["session"].update(secret_file=str(short)))
    assert console_config.read_settings(path).session.secret_file == short
    with pytest.raises(ConfigError) as err:
        console_config.load(path)
    assert re.match(r"\S*console-edited\.yaml: session: secret_file: \S*short-session\.key: "
                    r"the session secret must be at least 32 bytes", str(err.value)), err.value


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.update(ig_role=["x"]),
     r"console-edited\.yaml: unknown setting 'ig_role' \(known here: audit, auth, broker, "
     r"cases, dev_token_signin, ig_roles, listen, log_level, oidc, policy, rag_hours, "
     r"server_tls, session, tls\)"),
    (lambda c: c["session"].update(lifetime_minutes=0),
     r"console-edited\.yaml: session: lifetime_minutes: must be at least 1, got 0"),
    (lambda c: c.update(listen="nowhere"),
     r"console-edited\.yaml: listen: 'nowhere' is not HOST:PORT"),
    (lambda c: c.update(rag_hours={"red": 30, "amber": 24}),
     r"console-edited\.yaml: rag_hours: red must be soonest, then amber, then green"),
    (lambda c: c["broker"].update(timeout=3),
     r"console-edited\.yaml: broker: unknown setting 'timeout' \(known here: address, "
     r"addresses, server_name, timeout_seconds\)"),
    (lambda c: c["audit"].update(hash_key="k"),
     r"console-edited\.yaml: audit: unknown setting 'hash_key' \(known here: hash_key_file, "
     r"store\)"),
    (lambda c: c.update(dev_token_signin=False),
     r"console-edited\.yaml: oidc: configure sign-in through the identity provider"),
    (lambda c: c["server_tls"].update(cert=c["tls"]["cert"]),
     r"console-edited\.yaml: server_tls: cert: the certificate names .*not a console"),
])
def test_console_yaml_errors_are_one_line(fed: Any, change: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        console_config.load(_console(fed, change))
    assert re.search(message, str(err.value)), str(err.value)
    assert "\n" not in str(err.value)


POLICIES = Path(__file__).resolve().parent.parent / "policies"


def _policies(tmp_path: Path, name: str, change: Any) -> Path:
    src = tmp_path / "policies"
    shutil.copytree(POLICIES, src, ignore=shutil.ignore_patterns("tests"))
    path = src / name
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return src


def test_the_policy_sources_load(tmp_path: Path) -> None:
    fed, found = agreements.load_all(_policies(tmp_path, "federation.yaml", lambda d: None))
    assert "police" in fed.agencies and found  # positive control
    assert all(a.data["grants"] for a in found)


@pytest.mark.parametrize(("name", "change", "message"), [
    ("federation.yaml", lambda d: d.update(role=["x"]),
     r"federation\.yaml: unknown setting 'role' \(known here: agencies, agents, "
     r"approval_max_hours, approval_required, approvers, purposes, roles\)"),
    ("federation.yaml", lambda d: d.update(approval_max_hours=0),
     r"federation\.yaml: approval_max_hours: must be at least 0.1, got 0"),
    ("federation.yaml", lambda d: d["purposes"]["child_safeguarding"].update(stage=["x"]),
     r"federation\.yaml: purposes: child_safeguarding: unknown setting 'stage' \(known "
     r"here: stages, title\)"),
    ("federation.yaml", lambda d: d.update(approval_required=["s99"]),
     r"federation\.yaml: approval_required: 's99' is not a stage of any purpose"),
    ("mous/police-mash-safeguarding.yaml", lambda d: d.update(retention=3),
     r"police-mash-safeguarding\.yaml: unknown setting 'retention' \(known here: expires, "
     r"grants, id, parties, retention_days, review_by, title, valid_from, version\)"),
    ("mous/police-mash-safeguarding.yaml", lambda d: d.update(retention_days=0),
     r"police-mash-safeguarding\.yaml: retention_days: must be at least 1, got 0"),
    ("mous/police-mash-safeguarding.yaml",
     lambda d: d["grants"][0]["purposes"]["child_safeguarding"]["stages"].update(
         research={"answer": "known", "release": {"markers": "shred"}}),
     r"police-mash-safeguarding\.yaml: grants\[0\]: purposes: child_safeguarding: stages: "
     r"research: release: markers: unknown transform 'shred'"),
])
def test_policy_source_errors_are_one_line(tmp_path: Path, name: str, change: Any,
                                           message: str) -> None:
    with pytest.raises(AgreementError) as err:
        agreements.load_all(_policies(tmp_path, name, change))
    assert re.search(message, str(err.value)), str(err.value)
    assert "\n" not in str(err.value)


def _bundle_of(src: Path) -> Any:
    from mash.policy import bundle as bundle_mod

    return bundle_mod.build(src)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["assertions"][0].update(owners="police"),
     r"assertions/\S+\.yaml: assertions\[0\]: unknown setting 'owners' \(known here: before, "
     r"lawful_basis, never_asked, never_release, only_as, owner, purpose, requester, role, "
     r"rule, stage\)"),
    (lambda d: d["assertions"][0].update(before="s99"),
     r"assertions/\S+\.yaml: assertions\[0\]: before: 's99' is not one of "),
    (lambda d: d["assertions"][0].update(owner=["police", "mi5"]),
     r"assertions/\S+\.yaml: assertions\[0\]: owner: unknown 'mi5' \(known: "),
])
def test_assertion_errors_are_one_line(tmp_path: Path, change: Any, message: str) -> None:
    from mash.policy import assertions

    src = _policies(tmp_path, "federation.yaml", lambda d: None)
    bundle = _bundle_of(src)
    assert assertions.load(src, bundle)  # positive control
    path = src / "assertions" / "safeguards.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(AgreementError) as err:
        assertions.load(src, bundle)
    assert re.search(message, str(err.value)), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("change", "message"), [
    (lambda c, bad: c["audit"].update(signing_key_file=str(bad)),
     r"\.yaml: audit: signing_key_file: \S*bad\.key: not an unencrypted PEM private key"),
    (lambda c, bad: c["blind"].update(answer_key=str(bad)),
     r"\.yaml: blind: answer_key: \S*bad\.key: "),
])
def test_mash_agent_check_reports_a_bad_key_file_in_one_line(
        fed: Any, tmp_path: Path, change: Any, message: str) -> None:
    from tests.test_cli import one_error_line, run_mash

    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    path = _edit(fed.agent_configs["police"], tmp_path, lambda c: change(c, bad))
    code, _, err = run_mash("agent", "check", "--config", str(path))
    assert code == 2, err
    assert re.search(message, one_error_line(err)), err
