import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mash.v1 import answer_pb2 as _answer_pb2
from mash.v1 import audit_pb2 as _audit_pb2
from mash.v1 import blind_pb2 as _blind_pb2
from mash.v1 import subject_pb2 as _subject_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConnectRequest(_message.Message):
    __slots__ = ("hello", "heartbeat", "answer", "answers", "audit_head", "audit_witness")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_HEAD_FIELD_NUMBER: _ClassVar[int]
    AUDIT_WITNESS_FIELD_NUMBER: _ClassVar[int]
    hello: AgentHello
    heartbeat: Heartbeat
    answer: QueryAnswer
    answers: QueryAnswers
    audit_head: _audit_pb2.AuditHead
    audit_witness: _audit_pb2.AuditWitness
    def __init__(self, hello: _Optional[_Union[AgentHello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., answer: _Optional[_Union[QueryAnswer, _Mapping]] = ..., answers: _Optional[_Union[QueryAnswers, _Mapping]] = ..., audit_head: _Optional[_Union[_audit_pb2.AuditHead, _Mapping]] = ..., audit_witness: _Optional[_Union[_audit_pb2.AuditWitness, _Mapping]] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("welcome", "query", "heartbeat", "queries", "audit_head", "audit_witness")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    AUDIT_HEAD_FIELD_NUMBER: _ClassVar[int]
    AUDIT_WITNESS_FIELD_NUMBER: _ClassVar[int]
    welcome: BrokerWelcome
    query: Query
    heartbeat: Heartbeat
    queries: Queries
    audit_head: _audit_pb2.AuditHead
    audit_witness: _audit_pb2.AuditWitness
    def __init__(self, welcome: _Optional[_Union[BrokerWelcome, _Mapping]] = ..., query: _Optional[_Union[Query, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., queries: _Optional[_Union[Queries, _Mapping]] = ..., audit_head: _Optional[_Union[_audit_pb2.AuditHead, _Mapping]] = ..., audit_witness: _Optional[_Union[_audit_pb2.AuditWitness, _Mapping]] = ...) -> None: ...

class AgentHello(_message.Message):
    __slots__ = ("agent_version", "data_as_at", "policy_revision", "sources", "record_count", "ready", "accepts_batches", "data_status", "heartbeat_interval_ms", "accepts_blind")
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_AT_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    ACCEPTS_BATCHES_FIELD_NUMBER: _ClassVar[int]
    DATA_STATUS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTS_BLIND_FIELD_NUMBER: _ClassVar[int]
    agent_version: str
    data_as_at: _timestamp_pb2.Timestamp
    policy_revision: str
    sources: _containers.RepeatedCompositeFieldContainer[_answer_pb2.SourceSummary]
    record_count: int
    ready: bool
    accepts_batches: bool
    data_status: _answer_pb2.DataStatus
    heartbeat_interval_ms: int
    accepts_blind: bool
    def __init__(self, agent_version: _Optional[str] = ..., data_as_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., policy_revision: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[_answer_pb2.SourceSummary, _Mapping]]] = ..., record_count: _Optional[int] = ..., ready: _Optional[bool] = ..., accepts_batches: _Optional[bool] = ..., data_status: _Optional[_Union[_answer_pb2.DataStatus, _Mapping]] = ..., heartbeat_interval_ms: _Optional[int] = ..., accepts_blind: _Optional[bool] = ...) -> None: ...

class BrokerWelcome(_message.Message):
    __slots__ = ("broker_id", "agency_id", "heartbeat_interval_seconds", "accepts_batches")
    BROKER_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTS_BATCHES_FIELD_NUMBER: _ClassVar[int]
    broker_id: str
    agency_id: str
    heartbeat_interval_seconds: int
    accepts_batches: bool
    def __init__(self, broker_id: _Optional[str] = ..., agency_id: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[int] = ..., accepts_batches: _Optional[bool] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("sent_at", "data_as_at", "policy_revision", "ready", "record_count", "data_status")
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_AT_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    DATA_STATUS_FIELD_NUMBER: _ClassVar[int]
    sent_at: _timestamp_pb2.Timestamp
    data_as_at: _timestamp_pb2.Timestamp
    policy_revision: str
    ready: bool
    record_count: int
    data_status: _answer_pb2.DataStatus
    def __init__(self, sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data_as_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., policy_revision: _Optional[str] = ..., ready: _Optional[bool] = ..., record_count: _Optional[int] = ..., data_status: _Optional[_Union[_answer_pb2.DataStatus, _Mapping]] = ...) -> None: ...

class Query(_message.Message):
    __slots__ = ("query_id", "lookup_id", "analyst_token", "subject", "context", "deadline", "blind", "round", "sealed_subject", "approval", "proof")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    LOOKUP_ID_FIELD_NUMBER: _ClassVar[int]
    ANALYST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    BLIND_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SEALED_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    lookup_id: str
    analyst_token: str
    subject: _subject_pb2.Subject
    context: _subject_pb2.RequestContext
    deadline: _timestamp_pb2.Timestamp
    blind: _blind_pb2.BlindQuery
    round: int
    sealed_subject: _blind_pb2.SealedBox
    approval: str
    proof: str
    def __init__(self, query_id: _Optional[str] = ..., lookup_id: _Optional[str] = ..., analyst_token: _Optional[str] = ..., subject: _Optional[_Union[_subject_pb2.Subject, _Mapping]] = ..., context: _Optional[_Union[_subject_pb2.RequestContext, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., blind: _Optional[_Union[_blind_pb2.BlindQuery, _Mapping]] = ..., round: _Optional[int] = ..., sealed_subject: _Optional[_Union[_blind_pb2.SealedBox, _Mapping]] = ..., approval: _Optional[str] = ..., proof: _Optional[str] = ...) -> None: ...

class Queries(_message.Message):
    __slots__ = ("queries",)
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[Query]
    def __init__(self, queries: _Optional[_Iterable[_Union[Query, _Mapping]]] = ...) -> None: ...

class QueryAnswers(_message.Message):
    __slots__ = ("answers",)
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    answers: _containers.RepeatedCompositeFieldContainer[QueryAnswer]
    def __init__(self, answers: _Optional[_Iterable[_Union[QueryAnswer, _Mapping]]] = ...) -> None: ...

class QueryAnswer(_message.Message):
    __slots__ = ("query_id", "answer", "sealed_answer")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    SEALED_ANSWER_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    answer: _answer_pb2.AgencyAnswer
    sealed_answer: _blind_pb2.SealedBox
    def __init__(self, query_id: _Optional[str] = ..., answer: _Optional[_Union[_answer_pb2.AgencyAnswer, _Mapping]] = ..., sealed_answer: _Optional[_Union[_blind_pb2.SealedBox, _Mapping]] = ...) -> None: ...
