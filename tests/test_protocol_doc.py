"""docs/protocol.md stays true: it names every service, RPC, message and enum value of the
protos, quotes the code's constants as they are, states every answer validity rule of
mash/answers.py, and its byte layouts are the ones the code signs and seals."""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from mash import answers as answer_rules
from mash import grpc_options, signing
from mash.batching import MAX_BATCH, MAX_BATCH_BYTES
from mash.blind import answers as signed_answers
from mash.blind import directory, seal, session, tokens
from mash.blind.keys import key_id, raw
from mash.broker import batches as broker_batches
from mash.broker.liveness import LivenessConfig
from mash.identity import approvals, cert_binding, dpop, names
from mash.identity import tokens as analyst_tokens
from mash.policy import bundle
from mash.v1 import agent_pb2, answer_pb2, audit_pb2, blind_pb2, lookup_pb2, subject_pb2

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
MODULES = (agent_pb2, answer_pb2, audit_pb2, blind_pb2, lookup_pb2, subject_pb2)


def _named(name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", DOC) is not None


def _schema_names() -> list[str]:
    out: list[str] = []
    for module in MODULES:
        file = module.DESCRIPTOR
        for service in file.services_by_name.values():
            out.append(service.name)
            out.extend(method.name for method in service.methods)
        out.extend(file.message_types_by_name)
        for enum in file.enum_types_by_name.values():
            out.append(enum.name)
            out.extend(value.name for value in enum.values)
    return out


def test_every_service_rpc_message_and_enum_value_is_in_the_document() -> None:
    names_ = _schema_names()
    assert len(names_) > 90  # the protos were read
    missing = [n for n in names_ if not _named(n)]
    assert not missing, f"docs/protocol.md does not mention {missing}"


def test_every_capability_flag_is_in_the_document() -> None:
    for message in (agent_pb2.AgentHello, agent_pb2.BrokerWelcome):
        for field in message.DESCRIPTOR.fields:
            assert _named(field.name), f"{message.DESCRIPTOR.name}.{field.name}"


def _rule_texts() -> list[str]:
    """Every refusal text `mash.answers.problem` returns (f-strings for NOT_KNOWN)."""
    tree = ast.parse(inspect.getsource(answer_rules.problem))
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                texts.append(value.value)
            elif isinstance(value, ast.JoinedStr):
                texts.append("".join(v.value if isinstance(v, ast.Constant) else "NOT_KNOWN"
                                     for v in value.values))
    return texts


def test_every_answer_validity_rule_is_in_the_document() -> None:
    texts = _rule_texts()
    assert len(texts) >= 7
    missing = [t for t in texts if f'"{t}"' not in DOC]
    assert not missing, f"answer rules missing from docs/protocol.md: {missing}"


@pytest.mark.parametrize("text", [
    # limits
    f"{grpc_options.MAX_MESSAGE_BYTES} bytes", "1 MiB",
    f"at most {MAX_BATCH} queries a message", f"({MAX_BATCH_BYTES}\nbytes)",
    f"{broker_batches.HOLD_SECONDS:g} s after the last batch was sent",
    # tokens
    f"`{analyst_tokens.AUDIENCE}`", f"{analyst_tokens.MAX_TOKEN_CHARS} characters",
    f"audience `{approvals.AUDIENCE}`",
    # request proofs
    f"`typ:\n  {dpop.PROOF_TYPE}`", f"`typ: {cert_binding.PROOF_TYPE}`",
    f"at most\n  {cert_binding.MAX_CHAIN} entries",
    f"at most {cert_binding.MAX_PROOF_CHARS} characters",
    # identity
    names.AGENCY_ID.pattern, f"trust domain `{names.TRUST_DOMAIN}`",
    # heartbeats
    f"for {LivenessConfig().missed_heartbeats} heartbeat intervals",
    f"last\n   {LivenessConfig().missed_answers} queries",
    # blind formats
    f'person = "{tokens.PERSONAL.decode()}"', f"digest_size = {signed_answers.TOKEN_BYTES}",
    f'"{seal.HPKE_INFO.decode()}"', f"`{signed_answers.SUBJECT_LABEL.decode()}`",
    f"`{signed_answers.ANSWER_LABEL.decode()}`", f'"{signed_answers.CONTEXT.decode()}"',
    f"salt `{seal.SUITE.decode()}`", f"multiple of {seal.PAD_BLOCK} bytes",
    f"multiple of {session.ENVELOPE_BLOCK} bytes", f"`version` {seal.VERSION_HPKE}",
    # signed files
    f"`{directory.FORMAT}`", f"`{bundle.FORMAT}`", f"`{signing.FORMAT}`",
])
def test_the_document_quotes_the_code_as_it_is(text: str) -> None:
    assert text in DOC


def test_token_leeway_and_lifetime_are_the_verifiers() -> None:
    defaults = inspect.signature(analyst_tokens.TokenVerifier).parameters
    leeway = defaults["leeway"].default.total_seconds()
    lifetime = defaults["max_lifetime"].default.total_seconds() / 3600
    assert f"leeway: {leeway:g} s either way" in DOC
    assert approvals.LEEWAY.total_seconds() == leeway  # "same leeway"
    assert f"at\n  most {lifetime:g} h" in DOC


def test_the_request_hash_and_the_signed_bytes_are_as_documented() -> None:
    query = blind_pb2.BlindQuery(linkage_epoch=1, match_tokens=[b"t" * 16],
                                 answer_key=b"k" * 32, nonce=b"n" * 16)
    assert '"mash-blind-query-v1\\0"' in DOC
    assert signed_answers.request_hash(query) == hashlib.sha256(
        b"mash-blind-query-v1\0" + query.SerializeToString(deterministic=True)).digest()
    key = ed25519.Ed25519PrivateKey.generate()
    answer = answer_pb2.AgencyAnswer(agency_id="police", state=answer_pb2.ANSWER_STATE_NOT_KNOWN)
    digest = signed_answers.request_hash(query)
    signed = signed_answers.sign(key, "police", digest, 2, True, answer)
    documented = b"".join((b"mash-answer-v1", b"\0", b"police", b"\0", digest,
                           struct.pack(">I", 2), b"\x01",
                           answer.SerializeToString(deterministic=True)))
    key.public_key().verify(signed.signature, documented)  # raises if the layout differs
    assert signed.key_id == hashlib.sha256(raw(key.public_key())).hexdigest()[:16]
    assert signed.key_id == key_id(raw(key.public_key()))


def test_an_answer_box_opens_as_documented() -> None:
    """What another language would do from the document alone: HPKE single-shot with the
    framed info, then the length prefix."""
    analyst = x25519.X25519PrivateKey.generate()
    digest, agency, round_ = b"d" * 32, "health", 1
    aad = signed_answers.answer_aad(digest, agency, round_)
    assert aad == digest + b"\0" + agency.encode() + struct.pack(">I", round_)
    box = seal.seal(analyst.public_key(), "", seal.pad(b"signed answer"), aad,
                    signed_answers.ANSWER_LABEL)
    label = b"mash-answer-v1"
    info = (b"mash-seal-v2" + struct.pack(">I", len(label)) + label
            + struct.pack(">I", len(aad)) + aad)
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    plain = suite.decrypt(box.encapsulated_key + box.ciphertext, analyst, info=info)
    assert len(plain) % 4096 == 0
    size = struct.unpack(">I", plain[:4])[0]
    assert plain[4:4 + size] == b"signed answer"
    assert box.message().version == 2


def test_every_error_reason_is_in_the_document_with_its_code() -> None:
    from mash import rpc_errors

    assert len(rpc_errors.REASONS) >= 20
    missing = [r for r, (code, _) in rpc_errors.REASONS.items()
               if f"| `{r}` | `{code.name}` |" not in DOC]
    assert not missing, f"error reasons missing from docs/protocol.md: {missing}"
    assert f"`domain` is `{rpc_errors.DOMAIN}`" in DOC
    assert f"{rpc_errors.UNAVAILABLE_RETRY_SECONDS:g} s (`UNAVAILABLE_RETRY_SECONDS`)" in DOC


def test_the_blind_request_proofs_cover_the_documented_bytes() -> None:
    """What another language would sign from the document alone, for both rounds."""
    import base64

    import jwt

    from mash.blind import proofs
    from mash.identity.dpop import ClientKey, ProofVerifier, digest
    from mash.identity.request_binding import LOOKUP_TARGET

    assert f"`htm: {proofs.BLIND_METHOD}`" in DOC and f"`htu: {LOOKUP_TARGET}`" in DOC
    for domain in (proofs.ROUND_ONE_DOMAIN, proofs.ROUND_TWO_DOMAIN):
        quoted = domain.decode().replace("\n", "\\n")  # the document writes \n as C does
        assert f'`"{quoted}" || request_hash' in DOC
    assert "|| request_hash || box_digest || agency_id` (UTF-8, to\n  the end)" in DOC
    query = blind_pb2.BlindQuery(linkage_epoch=1, match_tokens=[b"t" * 16],
                                 answer_key=b"k" * 32, nonce=b"n" * 16)
    request_hash = signed_answers.request_hash(query)
    box = blind_pb2.SealedBox(key_id="police-1", encapsulated_key=b"e" * 32,
                              ciphertext=b"c" * 1040, version=2)
    box_digest = hashlib.sha256(
        struct.pack(">I", 2) + struct.pack(">I", 8) + b"police-1" + struct.pack(">I", 32)
        + b"e" * 32 + struct.pack(">I", 1040) + b"c" * 1040).digest()
    one = b"mash-blind-proof-v1 round 1\n" + request_hash
    two = b"mash-blind-proof-v1 round 2\n" + request_hash + box_digest + b"police"
    assert proofs.round_one_bytes(request_hash) == one
    assert proofs.round_two_bytes(request_hash, "police", box) == two
    key, token = ClientKey.generate(), "header.claims.signature"
    for proof, signed in ((proofs.sign_round_one(key, token=token, digest=request_hash), one),
                          (proofs.sign_round_two(key, token=token, digest=request_hash,
                                                 agency="police", box=box), two)):
        claims = jwt.decode(proof, options={"verify_signature": False})
        assert claims["htm"] == "mash.v1.Lookup/BlindLookup"
        assert claims["mash_req"] == base64.urlsafe_b64encode(
            hashlib.sha256(signed).digest()).rstrip(b"=").decode() == digest(signed)
        ProofVerifier().verify(proof, key_thumbprint=key.thumbprint, method=proofs.BLIND_METHOD,
                               target=LOOKUP_TARGET, access_token=token, request=signed)
