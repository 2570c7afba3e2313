"""The API the broker and agents call: entries, keyed subject hashes, builders, config."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, replace

import pytest

from mash import subject as subject_mod
from mash.audit import AuditConfig, AuditEntry, AuditError, AuditKeys, AuditLog, Outcome
from mash.audit.build import answers_entry, lookup_entry, outcome_from_answer, query_entry
from mash.audit.entry import canonical_json
from mash.audit.notifications import list_notices
from mash.audit.subject_hash import SubjectHasher, search_subject
from mash.config import read_model
from mash.context import LookupContext
from mash.errors import ConfigError, ValidationError
from mash.identity.tokens import Analyst
from mash.v1 import answer_pb2, subject_pb2
from tests.audit_support import Keys, backend

ANALYST = Analyst("a.analyst", "csc", "analyst", "mash-1", "idp", "tok-1",
                  dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
CONTEXT = LookupContext("child_safeguarding", "triage", "CASE-9",
                        "school raised a concern about bruising", "red")


@pytest.fixture
def keys(tmp_path):
    return Keys(tmp_path / "keys")


def wire_subject() -> subject_pb2.Subject:
    msg = subject_pb2.Subject()
    msg.name.given, msg.name.middle, msg.name.family = "Jane", "Mary", "O'Brien-Smith"
    msg.aliases.add(given="Janey", family="Smith")
    msg.date_of_birth.year, msg.date_of_birth.month, msg.date_of_birth.day = 2012, 1, 2
    msg.identifiers.add(kind=subject_pb2.IDENTIFIER_KIND_NHS_NUMBER, value="943 476 5919")
    msg.identifiers.add(kind=subject_pb2.IDENTIFIER_KIND_LOCAL, value="csc-123",
                        issuer="CSC")
    return msg


def test_search_hashes_exactly_what_the_broker_hashed(keys):
    written = keys.hasher.keys(subject_mod.from_proto(wire_subject()))
    assert sorted(written.values()) == ["local_id", "name+date_of_birth",
                                        "name+date_of_birth", "nhs_number"]
    dob = dt.date(2012, 1, 2)
    cases = [
        search_subject({"nhs_number": "9434765919"}),
        search_subject(local_ids=[("csc", "CSC-123")]),
        search_subject(names=["Jane O'Brien-Smith"], date_of_birth=dob),
        search_subject(names=["Mrs JANE Mary O'Brien Smith"], date_of_birth=dob),
        search_subject(given="Janey", family="smith", date_of_birth=dob),
    ]
    for subject in cases:
        assert set(keys.hasher.keys(subject)) & set(written), subject
    assert not set(keys.hasher.keys(search_subject(names=["Jane Smith"],
                                                   date_of_birth=dob.replace(day=3)))) & set(
        written)


def test_hashes_depend_on_the_key(keys, tmp_path):
    other = SubjectHasher(b"k" * 32)
    subject = search_subject({"nhs_number": "9434765919"})
    assert keys.hasher.hashes(subject) != other.hashes(subject)
    with pytest.raises(ConfigError, match="at least 32"):
        SubjectHasher(b"short")
    short = tmp_path / "short.key"
    short.write_text("abcd" * 4)
    with pytest.raises(ConfigError, match="8 bytes"):
        SubjectHasher.from_file(short)


def test_search_input_is_validated():
    with pytest.raises(ValidationError, match="date of birth"):
        search_subject(names=["Jane Smith"])
    with pytest.raises(ValidationError, match="not valid"):
        search_subject({"nhs_number": "9434765918"})


def test_entries_refuse_identifiers_in_place_of_hashes():
    with pytest.raises(AuditError, match="keyed hashes"):
        AuditEntry(event="lookup", subject=("9434765919",))
    with pytest.raises(AuditError, match="keyed hashes"):
        Outcome("police", "KNOWN", record_refs=("R-1",))
    with pytest.raises(AuditError, match="event"):
        AuditEntry(event="peek")
    with pytest.raises(AuditError, match="state"):
        Outcome("police", "MAYBE")


def test_entry_round_trips_through_its_canonical_json(keys):
    entry = lookup_entry(lookup_id="L1", analyst=ANALYST, context=CONTEXT,
                         subject=keys.hasher.hashes(subject_mod.from_proto(wire_subject())),
                         asked=["police", "health"], policy_revision="routing-3",
                         agreements=["mou-a", ""])
    assert AuditEntry.from_json(entry.canonical()) == entry
    assert entry.canonical() == AuditEntry.from_json(entry.canonical()).canonical()
    assert entry.asked == ("health", "police") and entry.agreements == ("mou-a",)


def test_an_entry_serialises_every_field_it_has(keys):
    """to_dict is written out for speed: it must say exactly what dataclasses.asdict says,
    so that a field added to an entry cannot be left out of the hashed record."""
    outcome = outcome_from_answer(known_answer(),
                                  record_refs=[keys.hasher.record_ref("niche", "R-1")])
    entry = replace(lookup_entry(
        lookup_id="L1", analyst=ANALYST, context=CONTEXT,
        subject=keys.hasher.hashes(subject_mod.from_proto(wire_subject())),
        asked=["police", "health"], policy_revision="routing-3", agreements=["mou-a"]),
        outcomes=(outcome, Outcome("health", "NOT_CHECKED", reason="agent_offline")),
        detail="a sentence")
    assert outcome.released and outcome.withheld and outcome.record_refs
    assert entry.to_dict() == asdict(entry)
    assert entry.canonical() == canonical_json(asdict(entry))


def known_answer() -> answer_pb2.AgencyAnswer:
    answer = answer_pb2.AgencyAnswer(agency_id="police", state=answer_pb2.ANSWER_STATE_KNOWN,
                                     agreement_id="mou-police-csc", policy_revision="bundle-7")
    for record in range(2):
        match = answer.matches.add(agreement_id="mou-police-csc")
        match.released.add(name="given_name", value="Jane", transform="keep")
        match.released.add(name="date_of_birth", value="2012", transform="year")
        match.withheld.add(name="incident_summary", reason=f"stage {record}")
    return answer


def test_agent_flow_records_what_was_released_and_notifies_the_owner(tmp_path, keys):
    with backend("sqlite", tmp_path) as db, AuditLog(db.open(), "police-agent",
                                                     keys.signer) as log:
        subject = subject_mod.from_proto(wire_subject())
        refs = [keys.hasher.record_ref("pnd", "R-1"), keys.hasher.record_ref("pnd", "R-2")]
        entry = query_entry(lookup_id="L1", query_id="Q1", analyst=ANALYST, context=CONTEXT,
                            subject=keys.hasher.hashes(subject), answer=known_answer(),
                            record_refs=refs)
        (outcome,) = entry.outcomes
        assert [(r.field, r.transform) for r in outcome.released] == [
            ("date_of_birth", "year"), ("given_name", "keep")]
        assert outcome.withheld == ("incident_summary",) and outcome.matches == 2
        assert "Jane" not in entry.canonical().decode()  # values are never recorded
        assert log.append(entry).seq == 1
        not_known = answer_pb2.AgencyAnswer(agency_id="police",
                                            state=answer_pb2.ANSWER_STATE_NOT_KNOWN)
        log.append(query_entry(lookup_id="L2", query_id="Q2", analyst=ANALYST,
                               context=CONTEXT, subject=(), answer=not_known))
        refused = answer_pb2.AgencyAnswer(
            agency_id="police", state=answer_pb2.ANSWER_STATE_NOT_CHECKED,
            not_checked_reason=answer_pb2.NOT_CHECKED_REASON_TOKEN_REJECTED)
        refused_entry = query_entry(lookup_id="L3", query_id="Q3", analyst=None, context=None,
                                    subject=(), answer=refused)
        assert refused_entry.outcomes[0].reason == "token_rejected"
        log.append(refused_entry)
        notices = list_notices(log.store)
        assert [(n.seq, n.state) for n in notices] == [(1, "KNOWN")]
        assert list_notices(log.store, record_refs=(refs[1],))[0].entry.requester == "a.analyst"


def test_broker_entries_do_not_notify(keys):
    entry = answers_entry(lookup_id="L1", analyst=ANALYST, context=CONTEXT, subject=(),
                          answers=[known_answer()], policy_revision="routing-3")
    assert not entry.notifies_owner
    assert entry.all_agreements() == ("mou-police-csc",)
    assert replace(entry, event="query").notifies_owner


def _read(tmp_path, keys, **settings) -> AuditConfig:
    data = {"store": "sqlite:///var/audit.db", "writer_id": "broker-1",
            "hash_key_file": str(keys.files.hash_key),
            "signing_key_file": str(keys.files.signing_key), **settings}
    return read_model(AuditConfig, data, "broker.yaml", tmp_path)


def test_config_reads_and_resolves_paths(tmp_path, keys):
    cfg = _read(tmp_path, keys, checkpoint_every=10, retention={
        "default_days": 2190, "agreements": {"mou-a": 30}})
    assert cfg.store == f"sqlite:///{tmp_path}/var/audit.db"
    assert cfg.retention.days_for(("mou-a",)) == 30
    assert cfg.retention.days_for(("mou-a", "mou-b")) == 2190
    assert cfg.witness_dir == tmp_path / "witness" / "broker-1"
    assert cfg.where == "broker.yaml: audit"
    with AuditKeys.read(cfg).open_log() as log:
        assert log.append(AuditEntry(event="lookup", lookup_id="L1")).seq == 1


@pytest.mark.parametrize(("settings", "message"), [
    ({"writer": "x"}, "broker.yaml: unknown setting 'writer' (known here: checkpoint_every, "),
    ({"store": "mysql://db"}, "broker.yaml: store: 'mysql' is not supported"),
    ({"writer_id": "Broker 1"}, "broker.yaml: writer_id: writer id 'Broker 1'"),
    ({"checkpoint_every": 0}, "broker.yaml: checkpoint_every: must be at least 1, got 0"),
    ({"retention": {"agreements": {"mou-a": "a year"}}},
     "broker.yaml: retention: agreements.mou-a: expected a number of days (>= 1)"),
    ({"retention": {"default": 30}},
     "broker.yaml: retention: unknown setting 'default' (known here: agreements, default_days)"),
    ({"hash_key_file": "gone.key"}, "broker.yaml: hash_key_file: file not found: "),
])
def test_config_errors_name_the_setting(tmp_path, keys, settings, message):
    with pytest.raises(ConfigError) as err:
        _read(tmp_path, keys, **settings)
    assert str(err.value).startswith(message), str(err.value)


def test_key_files_are_read_by_audit_keys_not_the_config(tmp_path, keys):
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    cfg = _read(tmp_path, keys, trusted_keys=["bad.pub", "missing.pub"])  # a plain value
    assert cfg.trusted_keys == (bad, tmp_path / "missing.pub")
    with pytest.raises(ConfigError, match=r"^broker\.yaml: audit: trusted_keys\[0\]: .*"
                                          r"bad\.pub: not a PEM public or private key"):
        AuditKeys.read(cfg)
    short = tmp_path / "short.key"
    short.write_text("short")
    with pytest.raises(ConfigError, match=r"^broker\.yaml: audit: hash_key_file: "):
        AuditKeys.read(_read(tmp_path, keys, hash_key_file=str(short)))
