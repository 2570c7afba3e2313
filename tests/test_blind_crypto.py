"""The blind broker's building blocks: sealed boxes, padding, signed answers, the key
directory (signature and rotation) and keyed match tokens."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from mash import signing
from mash import subject as subject_mod
from mash.blind import answers, directory, keys, setup
from mash.blind.seal import (
    VERSION_HPKE,
    VERSION_LEGACY,
    Box,
    SealError,
    open_box,
    pad,
    seal,
    seal_legacy,
    unpad,
)
from mash.blind.tokens import STRONG_KINDS, WEAK_KINDS, TokenIndex, subject_tokens
from mash.errors import ConfigError
from mash.matching import blocking
from mash.records import PersonRecord
from mash.subject import SubjectQuery
from mash.synth.corrupt import LEVELS, to_query, to_record, view
from mash.synth.population import population
from mash.v1 import answer_pb2, blind_pb2
from tests.helpers import lookup_request

TODAY = dt.date(2026, 11, 30)


@pytest.mark.parametrize("sealer", [seal, seal_legacy], ids=["hpke", "legacy"])
def test_sealed_box_opens_only_for_its_recipient_and_context(sealer) -> None:
    bob = x25519.X25519PrivateKey.generate()
    box = sealer(bob.public_key(), "k1", b"subject", aad=b"request|police", label=b"subject")
    assert open_box(bob, box, b"request|police", b"subject") == b"subject"
    # The same box as it crosses the wire, and back.
    assert open_box(bob, Box.from_message(box.message()), b"request|police",
                    b"subject") == b"subject"
    for key, aad, label in ((x25519.X25519PrivateKey.generate(), b"request|police", b"subject"),
                            (bob, b"request|health", b"subject"),
                            (bob, b"request|police", b"answer"),
                            (bob, b"request|polic", b"esubject")):
        with pytest.raises(SealError, match="does not open"):
            open_box(key, box, aad, label)
    altered = replace(box, ciphertext=box.ciphertext[:-1] + bytes([box.ciphertext[-1] ^ 1]))
    with pytest.raises(SealError, match="does not open"):
        open_box(bob, altered, b"request|police", b"subject")
    with pytest.raises(SealError, match="ephemeral key"):
        open_box(bob, replace(box, encapsulated_key=box.encapsulated_key[:31]),
                 b"request|police", b"subject")


def test_seal_writes_rfc9180_hpke_and_opens_both_versions() -> None:
    bob = x25519.X25519PrivateKey.generate()
    new, old = (s(bob.public_key(), "k1", b"hello", aad=b"a", label=b"l")
                for s in (seal, seal_legacy))
    assert new.version == VERSION_HPKE and new.message().version == 2
    assert old.version == VERSION_LEGACY
    # Version 2 is plain RFC 9180: any HPKE implementation opens it with the framed info.
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    info = b"mash-seal-v2" + (1).to_bytes(4, "big") + b"l" + (1).to_bytes(4, "big") + b"a"
    assert suite.decrypt(new.encapsulated_key + new.ciphertext, bob, info=info) == b"hello"
    # A box from a build before versions has none on the wire: it is read as version 1.
    wire = old.message()
    wire.ClearField("version")
    assert open_box(bob, Box.from_message(wire), b"a", b"l") == b"hello"
    # The version is not a free choice: each box opens only as what it is.
    for box, wrong in ((new, VERSION_LEGACY), (old, VERSION_HPKE)):
        with pytest.raises(SealError, match="does not open"):
            open_box(bob, replace(box, version=wrong), b"a", b"l")
    with pytest.raises(SealError, match="format version 9, which this build does not know"):
        open_box(bob, replace(new, version=9), b"a", b"l")


def test_padding_hides_size_and_round_trips() -> None:
    short, long = pad(b"x"), pad(b"y" * 3000)
    assert len(short) == len(long) == 4096
    assert unpad(short) == b"x" and unpad(long) == b"y" * 3000
    with pytest.raises(SealError):
        unpad(b"\xff\xff\xff\xff" + b"\0" * 10)


def _query() -> blind_pb2.BlindQuery:
    return blind_pb2.BlindQuery(linkage_epoch=1, match_tokens=[b"t" * 16], answer_key=b"k" * 32,
                                nonce=b"n" * 16)


def test_signed_answer_is_bound_to_agency_request_and_round() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    published = {keys.key_id(keys.raw(key.public_key())): key.public_key()}
    digest = answers.request_hash(_query())
    answer = answer_pb2.AgencyAnswer(agency_id="police", state=answer_pb2.ANSWER_STATE_NOT_KNOWN)
    signed = answers.sign(key, "police", digest, 1, False, answer)
    assert answers.verify(signed, published, "police", digest, 1) == (False, answer)
    other = answers.request_hash(blind_pb2.BlindQuery(nonce=b"m" * 16))
    for agency, want_digest, round_ in (("health", digest, 1), ("police", other, 1),
                                        ("police", digest, 2)):
        with pytest.raises(answers.AnswerRejected):
            answers.verify(signed, published, agency, want_digest, round_)
    forged = blind_pb2.SignedAnswer()
    forged.CopyFrom(signed)
    forged.answer = answer_pb2.AgencyAnswer(
        agency_id="police", state=answer_pb2.ANSWER_STATE_KNOWN).SerializeToString()
    with pytest.raises(answers.AnswerRejected, match="altered"):
        answers.verify(forged, published, "police", digest, 1)
    with pytest.raises(answers.AnswerRejected, match="does not list"):
        answers.verify(signed, {}, "police", digest, 1)


def test_directory_signature_and_rotation(tmp_path: Path) -> None:
    blind = setup.create(tmp_path, ["police"], today=TODAY)
    signer = signing.load_public_key(blind.authority_public)
    loaded = directory.load(blind.directory, [signer])
    assert loaded.current_epoch(TODAY) == 1
    # Tampering with the published keys, or dropping the signature, is refused.
    doc = json.loads(blind.directory.read_bytes())
    doc["version"] = 2
    blind.directory.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"signature|altered|match"):
        directory.load(blind.directory, [signer])
    signing.signature_path(blind.directory).unlink()
    with pytest.raises(ConfigError):
        directory.load(blind.directory, [signer])

    # Rotation: a new sealing key is published before the old one retires. Analysts seal to
    # the newest valid key; both answer keys verify during the overlap; after it, only the new.
    old_seal, new_seal = x25519.X25519PrivateKey.generate(), x25519.X25519PrivateKey.generate()
    old_sign, new_sign = (ed25519.Ed25519PrivateKey.generate(),
                          ed25519.Ed25519PrivateKey.generate())
    doc = json.loads(directory.build({}, [(1, TODAY, TODAY + dt.timedelta(days=30)),
                                          (2, TODAY + dt.timedelta(days=20),
                                           TODAY + dt.timedelta(days=60))], TODAY, TODAY))
    doc["agencies"]["police"] = {
        "sealing": [directory.entry(keys.raw(old_seal.public_key()), TODAY - dt.timedelta(9),
                                    TODAY + dt.timedelta(5)),
                    directory.entry(keys.raw(new_seal.public_key()), TODAY - dt.timedelta(1),
                                    TODAY + dt.timedelta(90))],
        "answer": [directory.entry(keys.raw(old_sign.public_key()), TODAY - dt.timedelta(9),
                                   TODAY + dt.timedelta(5)),
                   directory.entry(keys.raw(new_sign.public_key()), TODAY - dt.timedelta(1),
                                   TODAY + dt.timedelta(90))]}
    rotated = directory.parse(json.dumps(doc).encode())
    assert rotated.sealing_key("police", TODAY)[0] == keys.key_id(keys.raw(new_seal.public_key()))
    assert len(rotated.answer_keys("police", TODAY)) == 2
    assert len(rotated.answer_keys("police", TODAY + dt.timedelta(10))) == 1
    assert rotated.valid_epochs(TODAY + dt.timedelta(25)) == {1, 2}
    assert rotated.current_epoch(TODAY + dt.timedelta(25)) == 2
    with pytest.raises(ConfigError):
        rotated.sealing_key("health", TODAY)


def _subject(name: str, dob: str, postcode: str) -> SubjectQuery:
    return subject_mod.from_proto(lookup_request(name, dob, (postcode,)).subject)


def _record(name: str, dob: str, postcode: str, rid: str) -> PersonRecord:
    s = _subject(name, dob, postcode)
    return PersonRecord(record_id=rid, source="s", names=s.names, date_of_birth=s.date_of_birth,
                        sex="", postcodes=s.postcodes, identifiers={})


def test_tokens_are_keyed_and_find_the_same_candidates_as_blocking() -> None:
    key, other_key = b"k" * 32, b"o" * 32
    leah = _subject("Leah Thompson", "2014-05-07", "LS9 8AB")
    assert subject_tokens(key, leah) == subject_tokens(key, leah)
    assert not set(subject_tokens(key, leah)) & set(subject_tokens(other_key, leah))
    index = TokenIndex(key, [
        _record("Leah Thompson", "2014-05-07", "LS9 8AB", "1"),
        # a stranger who shares only the date of birth: one weak key, not a candidate
        _record("Zara Okafor", "2013-06-14", "YO1 7HH", "2"),
    ])
    assert len(index) > 5
    assert index.candidates(subject_tokens(key, leah)) == 1
    assert index.candidates(subject_tokens(other_key, leah)) == 0  # another epoch's key
    for variant in (_subject("Lea Thomson", "2014-05-07", "LS9 8AB"),   # typos
                    _subject("Leah Thompson", "2014-07-05", "LS9 8AB"),  # day/month swapped
                    _subject("Thompson Leah", "2014-05-07", "LS9 8AB"),  # names swapped
                    _subject("Leah Thompson", "2014-05-07", "M1 1AA")):  # moved
        assert index.candidates(subject_tokens(key, variant)) == 1, variant
    stranger = _subject("Amir Hussain", "2013-06-14", "M1 1AA")
    assert index.candidates(subject_tokens(key, stranger)) == 0


def test_configured_directory_is_verified_again_when_it_changes(tmp_path: Path) -> None:
    blind = setup.create(tmp_path, ["police"], today=TODAY)
    cfg = directory.DirectoryConfig(blind.directory,
                                    (signing.load_public_key(blind.authority_public),))
    assert cfg.load() is cfg.load()  # unchanged files: verified once
    doc = json.loads(blind.directory.read_bytes())
    doc["version"] = 7
    blind.directory.write_text(json.dumps(doc))
    with pytest.raises(ConfigError):
        cfg.load()


def test_every_kind_of_blocking_key_is_a_token_kind() -> None:
    """A blocking key the token round does not know is silently left out of it (and the
    people only that key finds are lost to blind lookups): every kind the matcher makes,
    from records and from subjects of every shape, is a strong or a weak token kind."""
    rng, today = random.Random(7), dt.date(2026, 11, 1)
    kinds: set[str] = set()
    for i, person in enumerate(population(300, seed=7, today=today)):
        seen = view(person, LEVELS["high"], rng, today)
        kinds |= {k.split(":", 1)[0] for k in blocking.record_keys(to_record(seen, "s", str(i)))}
        for with_ids in (True, False):
            subject = to_query(seen, with_identifiers=with_ids)
            kinds |= {k.split(":", 1)[0] for k in blocking.query_keys(subject)}
    assert {"nhs", "nd", "sy", "db", "pc", "na"} <= kinds  # the sample reaches every shape
    assert kinds <= set(STRONG_KINDS) | set(WEAK_KINDS)
