from mash.v1 import answer_pb2 as _answer_pb2
from mash.v1 import subject_pb2 as _subject_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SealedBox(_message.Message):
    __slots__ = ("key_id", "encapsulated_key", "ciphertext", "version")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ENCAPSULATED_KEY_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    encapsulated_key: bytes
    ciphertext: bytes
    version: int
    def __init__(self, key_id: _Optional[str] = ..., encapsulated_key: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ..., version: _Optional[int] = ...) -> None: ...

class BlindQuery(_message.Message):
    __slots__ = ("context", "linkage_epoch", "match_tokens", "answer_key", "nonce", "agencies", "evidence")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LINKAGE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    MATCH_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_KEY_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    AGENCIES_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    context: _subject_pb2.RequestContext
    linkage_epoch: int
    match_tokens: _containers.RepeatedScalarFieldContainer[bytes]
    answer_key: bytes
    nonce: bytes
    agencies: _containers.RepeatedScalarFieldContainer[str]
    evidence: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, context: _Optional[_Union[_subject_pb2.RequestContext, _Mapping]] = ..., linkage_epoch: _Optional[int] = ..., match_tokens: _Optional[_Iterable[bytes]] = ..., answer_key: _Optional[bytes] = ..., nonce: _Optional[bytes] = ..., agencies: _Optional[_Iterable[str]] = ..., evidence: _Optional[_Iterable[str]] = ...) -> None: ...

class SignedAnswer(_message.Message):
    __slots__ = ("agency_id", "request_hash", "round", "candidate", "answer", "key_id", "signature")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_HASH_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    request_hash: bytes
    round: int
    candidate: bool
    answer: bytes
    key_id: str
    signature: bytes
    def __init__(self, agency_id: _Optional[str] = ..., request_hash: _Optional[bytes] = ..., round: _Optional[int] = ..., candidate: _Optional[bool] = ..., answer: _Optional[bytes] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class SealedAnswer(_message.Message):
    __slots__ = ("agency_id", "box")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    box: SealedBox
    def __init__(self, agency_id: _Optional[str] = ..., box: _Optional[_Union[SealedBox, _Mapping]] = ...) -> None: ...

class SealedSubject(_message.Message):
    __slots__ = ("agency_id", "box", "proof")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    box: SealedBox
    proof: str
    def __init__(self, agency_id: _Optional[str] = ..., box: _Optional[_Union[SealedBox, _Mapping]] = ..., proof: _Optional[str] = ...) -> None: ...

class SealedSubjects(_message.Message):
    __slots__ = ("subjects",)
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    subjects: _containers.RepeatedCompositeFieldContainer[SealedSubject]
    def __init__(self, subjects: _Optional[_Iterable[_Union[SealedSubject, _Mapping]]] = ...) -> None: ...

class SubjectEnvelope(_message.Message):
    __slots__ = ("subject", "padding")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PADDING_FIELD_NUMBER: _ClassVar[int]
    subject: _subject_pb2.Subject
    padding: bytes
    def __init__(self, subject: _Optional[_Union[_subject_pb2.Subject, _Mapping]] = ..., padding: _Optional[bytes] = ...) -> None: ...

class BlindLookupRequest(_message.Message):
    __slots__ = ("query", "subjects", "proof")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    query: BlindQuery
    subjects: SealedSubjects
    proof: str
    def __init__(self, query: _Optional[_Union[BlindQuery, _Mapping]] = ..., subjects: _Optional[_Union[SealedSubjects, _Mapping]] = ..., proof: _Optional[str] = ...) -> None: ...

class BlindRound(_message.Message):
    __slots__ = ("lookup_id", "request_hash", "answers", "broker_answers", "routing_revision")
    LOOKUP_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_HASH_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    BROKER_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_REVISION_FIELD_NUMBER: _ClassVar[int]
    lookup_id: str
    request_hash: bytes
    answers: _containers.RepeatedCompositeFieldContainer[SealedAnswer]
    broker_answers: _containers.RepeatedCompositeFieldContainer[_answer_pb2.AgencyAnswer]
    routing_revision: str
    def __init__(self, lookup_id: _Optional[str] = ..., request_hash: _Optional[bytes] = ..., answers: _Optional[_Iterable[_Union[SealedAnswer, _Mapping]]] = ..., broker_answers: _Optional[_Iterable[_Union[_answer_pb2.AgencyAnswer, _Mapping]]] = ..., routing_revision: _Optional[str] = ...) -> None: ...

class BlindLookupResponse(_message.Message):
    __slots__ = ("round_one", "round_two")
    ROUND_ONE_FIELD_NUMBER: _ClassVar[int]
    ROUND_TWO_FIELD_NUMBER: _ClassVar[int]
    round_one: BlindRound
    round_two: BlindRound
    def __init__(self, round_one: _Optional[_Union[BlindRound, _Mapping]] = ..., round_two: _Optional[_Union[BlindRound, _Mapping]] = ...) -> None: ...
