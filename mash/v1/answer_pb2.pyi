import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AnswerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANSWER_STATE_UNSPECIFIED: _ClassVar[AnswerState]
    ANSWER_STATE_KNOWN: _ClassVar[AnswerState]
    ANSWER_STATE_NOT_KNOWN: _ClassVar[AnswerState]
    ANSWER_STATE_WITHHELD: _ClassVar[AnswerState]
    ANSWER_STATE_NOT_CHECKED: _ClassVar[AnswerState]

class NotCheckedReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOT_CHECKED_REASON_UNSPECIFIED: _ClassVar[NotCheckedReason]
    NOT_CHECKED_REASON_NO_AGREEMENT: _ClassVar[NotCheckedReason]
    NOT_CHECKED_REASON_AGENT_OFFLINE: _ClassVar[NotCheckedReason]
    NOT_CHECKED_REASON_TIMED_OUT: _ClassVar[NotCheckedReason]
    NOT_CHECKED_REASON_POLICY_ERROR: _ClassVar[NotCheckedReason]
    NOT_CHECKED_REASON_TOO_FEW_IDENTIFIERS: _ClassVar[NotCheckedReason]
    NOT_CHECKED_REASON_AGENT_ERROR: _ClassVar[NotCheckedReason]
    NOT_CHECKED_REASON_TOKEN_REJECTED: _ClassVar[NotCheckedReason]
    NOT_CHECKED_REASON_AUDIT_FAILED: _ClassVar[NotCheckedReason]
    NOT_CHECKED_REASON_DATA_UNAVAILABLE: _ClassVar[NotCheckedReason]
    NOT_CHECKED_REASON_AGENT_DISCONNECTED: _ClassVar[NotCheckedReason]
    NOT_CHECKED_REASON_APPROVAL_REQUIRED: _ClassVar[NotCheckedReason]

class Confidence(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONFIDENCE_UNSPECIFIED: _ClassVar[Confidence]
    CONFIDENCE_MATCH: _ClassVar[Confidence]
    CONFIDENCE_POSSIBLE: _ClassVar[Confidence]
ANSWER_STATE_UNSPECIFIED: AnswerState
ANSWER_STATE_KNOWN: AnswerState
ANSWER_STATE_NOT_KNOWN: AnswerState
ANSWER_STATE_WITHHELD: AnswerState
ANSWER_STATE_NOT_CHECKED: AnswerState
NOT_CHECKED_REASON_UNSPECIFIED: NotCheckedReason
NOT_CHECKED_REASON_NO_AGREEMENT: NotCheckedReason
NOT_CHECKED_REASON_AGENT_OFFLINE: NotCheckedReason
NOT_CHECKED_REASON_TIMED_OUT: NotCheckedReason
NOT_CHECKED_REASON_POLICY_ERROR: NotCheckedReason
NOT_CHECKED_REASON_TOO_FEW_IDENTIFIERS: NotCheckedReason
NOT_CHECKED_REASON_AGENT_ERROR: NotCheckedReason
NOT_CHECKED_REASON_TOKEN_REJECTED: NotCheckedReason
NOT_CHECKED_REASON_AUDIT_FAILED: NotCheckedReason
NOT_CHECKED_REASON_DATA_UNAVAILABLE: NotCheckedReason
NOT_CHECKED_REASON_AGENT_DISCONNECTED: NotCheckedReason
NOT_CHECKED_REASON_APPROVAL_REQUIRED: NotCheckedReason
CONFIDENCE_UNSPECIFIED: Confidence
CONFIDENCE_MATCH: Confidence
CONFIDENCE_POSSIBLE: Confidence

class ReleasedField(_message.Message):
    __slots__ = ("name", "value", "transform")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    transform: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., transform: _Optional[str] = ...) -> None: ...

class WithheldField(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class MatchResult(_message.Message):
    __slots__ = ("confidence", "score", "released", "withheld", "matched_on", "source", "agreement_id")
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_FIELD_NUMBER: _ClassVar[int]
    MATCHED_ON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    confidence: Confidence
    score: float
    released: _containers.RepeatedCompositeFieldContainer[ReleasedField]
    withheld: _containers.RepeatedCompositeFieldContainer[WithheldField]
    matched_on: _containers.RepeatedScalarFieldContainer[str]
    source: str
    agreement_id: str
    def __init__(self, confidence: _Optional[_Union[Confidence, str]] = ..., score: _Optional[float] = ..., released: _Optional[_Iterable[_Union[ReleasedField, _Mapping]]] = ..., withheld: _Optional[_Iterable[_Union[WithheldField, _Mapping]]] = ..., matched_on: _Optional[_Iterable[str]] = ..., source: _Optional[str] = ..., agreement_id: _Optional[str] = ...) -> None: ...

class SourceSummary(_message.Message):
    __slots__ = ("name", "as_at", "record_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AS_AT_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    as_at: _timestamp_pb2.Timestamp
    record_count: int
    def __init__(self, name: _Optional[str] = ..., as_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., record_count: _Optional[int] = ...) -> None: ...

class DataStatus(_message.Message):
    __slots__ = ("stale", "refused_problem", "refused_detail", "refused_source", "refused_at")
    STALE_FIELD_NUMBER: _ClassVar[int]
    REFUSED_PROBLEM_FIELD_NUMBER: _ClassVar[int]
    REFUSED_DETAIL_FIELD_NUMBER: _ClassVar[int]
    REFUSED_SOURCE_FIELD_NUMBER: _ClassVar[int]
    REFUSED_AT_FIELD_NUMBER: _ClassVar[int]
    stale: bool
    refused_problem: str
    refused_detail: str
    refused_source: str
    refused_at: _timestamp_pb2.Timestamp
    def __init__(self, stale: _Optional[bool] = ..., refused_problem: _Optional[str] = ..., refused_detail: _Optional[str] = ..., refused_source: _Optional[str] = ..., refused_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SearchSummary(_message.Message):
    __slots__ = ("identifiers_used", "name_variants", "date_of_birth_tolerance_days", "date_of_birth_day_month_swap", "postcodes", "sources", "candidates_examined", "date_of_birth_rules", "addresses")
    IDENTIFIERS_USED_FIELD_NUMBER: _ClassVar[int]
    NAME_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_TOLERANCE_DAYS_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_DAY_MONTH_SWAP_FIELD_NUMBER: _ClassVar[int]
    POSTCODES_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_EXAMINED_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_RULES_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    identifiers_used: _containers.RepeatedScalarFieldContainer[str]
    name_variants: _containers.RepeatedScalarFieldContainer[str]
    date_of_birth_tolerance_days: int
    date_of_birth_day_month_swap: bool
    postcodes: _containers.RepeatedScalarFieldContainer[str]
    sources: _containers.RepeatedCompositeFieldContainer[SourceSummary]
    candidates_examined: int
    date_of_birth_rules: _containers.RepeatedScalarFieldContainer[str]
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, identifiers_used: _Optional[_Iterable[str]] = ..., name_variants: _Optional[_Iterable[str]] = ..., date_of_birth_tolerance_days: _Optional[int] = ..., date_of_birth_day_month_swap: _Optional[bool] = ..., postcodes: _Optional[_Iterable[str]] = ..., sources: _Optional[_Iterable[_Union[SourceSummary, _Mapping]]] = ..., candidates_examined: _Optional[int] = ..., date_of_birth_rules: _Optional[_Iterable[str]] = ..., addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class AgencyAnswer(_message.Message):
    __slots__ = ("agency_id", "agency_name", "state", "not_checked_reason", "detail", "matches", "searched", "contact_route", "data_as_at", "policy_revision", "agreement_id", "elapsed_ms", "warnings")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NOT_CHECKED_REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    SEARCHED_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ROUTE_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_AT_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    agency_name: str
    state: AnswerState
    not_checked_reason: NotCheckedReason
    detail: str
    matches: _containers.RepeatedCompositeFieldContainer[MatchResult]
    searched: SearchSummary
    contact_route: str
    data_as_at: _timestamp_pb2.Timestamp
    policy_revision: str
    agreement_id: str
    elapsed_ms: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agency_id: _Optional[str] = ..., agency_name: _Optional[str] = ..., state: _Optional[_Union[AnswerState, str]] = ..., not_checked_reason: _Optional[_Union[NotCheckedReason, str]] = ..., detail: _Optional[str] = ..., matches: _Optional[_Iterable[_Union[MatchResult, _Mapping]]] = ..., searched: _Optional[_Union[SearchSummary, _Mapping]] = ..., contact_route: _Optional[str] = ..., data_as_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., policy_revision: _Optional[str] = ..., agreement_id: _Optional[str] = ..., elapsed_ms: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...
