import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mash.v1 import answer_pb2 as _answer_pb2
from mash.v1 import blind_pb2 as _blind_pb2
from mash.v1 import subject_pb2 as _subject_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LookupRequest(_message.Message):
    __slots__ = ("subject", "context", "agencies", "approval", "lookup_id", "attempt", "proof")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    AGENCIES_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    LOOKUP_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    subject: _subject_pb2.Subject
    context: _subject_pb2.RequestContext
    agencies: _containers.RepeatedScalarFieldContainer[str]
    approval: str
    lookup_id: str
    attempt: int
    proof: str
    def __init__(self, subject: _Optional[_Union[_subject_pb2.Subject, _Mapping]] = ..., context: _Optional[_Union[_subject_pb2.RequestContext, _Mapping]] = ..., agencies: _Optional[_Iterable[str]] = ..., approval: _Optional[str] = ..., lookup_id: _Optional[str] = ..., attempt: _Optional[int] = ..., proof: _Optional[str] = ...) -> None: ...

class LookupResponse(_message.Message):
    __slots__ = ("lookup_id", "asked_at", "answers", "requester", "requester_agency", "routing_revision")
    LOOKUP_ID_FIELD_NUMBER: _ClassVar[int]
    ASKED_AT_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_AGENCY_FIELD_NUMBER: _ClassVar[int]
    ROUTING_REVISION_FIELD_NUMBER: _ClassVar[int]
    lookup_id: str
    asked_at: _timestamp_pb2.Timestamp
    answers: _containers.RepeatedCompositeFieldContainer[_answer_pb2.AgencyAnswer]
    requester: str
    requester_agency: str
    routing_revision: str
    def __init__(self, lookup_id: _Optional[str] = ..., asked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., answers: _Optional[_Iterable[_Union[_answer_pb2.AgencyAnswer, _Mapping]]] = ..., requester: _Optional[str] = ..., requester_agency: _Optional[str] = ..., routing_revision: _Optional[str] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentStatus(_message.Message):
    __slots__ = ("agency_id", "agency_name", "online", "connected_at", "last_seen", "data_as_at", "policy_revision", "agent_version", "record_count", "ready", "data_status", "unresponsive", "unresponsive_since", "unresponsive_reason")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_NAME_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_AT_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    DATA_STATUS_FIELD_NUMBER: _ClassVar[int]
    UNRESPONSIVE_FIELD_NUMBER: _ClassVar[int]
    UNRESPONSIVE_SINCE_FIELD_NUMBER: _ClassVar[int]
    UNRESPONSIVE_REASON_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    agency_name: str
    online: bool
    connected_at: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    data_as_at: _timestamp_pb2.Timestamp
    policy_revision: str
    agent_version: str
    record_count: int
    ready: bool
    data_status: _answer_pb2.DataStatus
    unresponsive: bool
    unresponsive_since: _timestamp_pb2.Timestamp
    unresponsive_reason: str
    def __init__(self, agency_id: _Optional[str] = ..., agency_name: _Optional[str] = ..., online: _Optional[bool] = ..., connected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data_as_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., policy_revision: _Optional[str] = ..., agent_version: _Optional[str] = ..., record_count: _Optional[int] = ..., ready: _Optional[bool] = ..., data_status: _Optional[_Union[_answer_pb2.DataStatus, _Mapping]] = ..., unresponsive: _Optional[bool] = ..., unresponsive_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., unresponsive_reason: _Optional[str] = ...) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[AgentStatus]
    def __init__(self, agents: _Optional[_Iterable[_Union[AgentStatus, _Mapping]]] = ...) -> None: ...
