from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Sex(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEX_UNSPECIFIED: _ClassVar[Sex]
    SEX_FEMALE: _ClassVar[Sex]
    SEX_MALE: _ClassVar[Sex]
    SEX_OTHER: _ClassVar[Sex]

class IdentifierKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IDENTIFIER_KIND_UNSPECIFIED: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_NHS_NUMBER: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_UPN: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_PNC_ID: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_NI_NUMBER: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_LOCAL: _ClassVar[IdentifierKind]

class Urgency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    URGENCY_UNSPECIFIED: _ClassVar[Urgency]
    URGENCY_RED: _ClassVar[Urgency]
    URGENCY_AMBER: _ClassVar[Urgency]
    URGENCY_GREEN: _ClassVar[Urgency]
SEX_UNSPECIFIED: Sex
SEX_FEMALE: Sex
SEX_MALE: Sex
SEX_OTHER: Sex
IDENTIFIER_KIND_UNSPECIFIED: IdentifierKind
IDENTIFIER_KIND_NHS_NUMBER: IdentifierKind
IDENTIFIER_KIND_UPN: IdentifierKind
IDENTIFIER_KIND_PNC_ID: IdentifierKind
IDENTIFIER_KIND_NI_NUMBER: IdentifierKind
IDENTIFIER_KIND_LOCAL: IdentifierKind
URGENCY_UNSPECIFIED: Urgency
URGENCY_RED: Urgency
URGENCY_AMBER: Urgency
URGENCY_GREEN: Urgency

class Date(_message.Message):
    __slots__ = ("year", "month", "day")
    YEAR_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    year: int
    month: int
    day: int
    def __init__(self, year: _Optional[int] = ..., month: _Optional[int] = ..., day: _Optional[int] = ...) -> None: ...

class PersonName(_message.Message):
    __slots__ = ("given", "middle", "family")
    GIVEN_FIELD_NUMBER: _ClassVar[int]
    MIDDLE_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    given: str
    middle: str
    family: str
    def __init__(self, given: _Optional[str] = ..., middle: _Optional[str] = ..., family: _Optional[str] = ...) -> None: ...

class Identifier(_message.Message):
    __slots__ = ("kind", "value", "issuer")
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    kind: IdentifierKind
    value: str
    issuer: str
    def __init__(self, kind: _Optional[_Union[IdentifierKind, str]] = ..., value: _Optional[str] = ..., issuer: _Optional[str] = ...) -> None: ...

class Address(_message.Message):
    __slots__ = ("lines", "postcode")
    LINES_FIELD_NUMBER: _ClassVar[int]
    POSTCODE_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    postcode: str
    def __init__(self, lines: _Optional[_Iterable[str]] = ..., postcode: _Optional[str] = ...) -> None: ...

class Subject(_message.Message):
    __slots__ = ("name", "aliases", "date_of_birth", "sex", "addresses", "identifiers")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    name: PersonName
    aliases: _containers.RepeatedCompositeFieldContainer[PersonName]
    date_of_birth: Date
    sex: Sex
    addresses: _containers.RepeatedCompositeFieldContainer[Address]
    identifiers: _containers.RepeatedCompositeFieldContainer[Identifier]
    def __init__(self, name: _Optional[_Union[PersonName, _Mapping]] = ..., aliases: _Optional[_Iterable[_Union[PersonName, _Mapping]]] = ..., date_of_birth: _Optional[_Union[Date, _Mapping]] = ..., sex: _Optional[_Union[Sex, str]] = ..., addresses: _Optional[_Iterable[_Union[Address, _Mapping]]] = ..., identifiers: _Optional[_Iterable[_Union[Identifier, _Mapping]]] = ...) -> None: ...

class RequestContext(_message.Message):
    __slots__ = ("purpose", "stage", "case_reference", "justification", "urgency")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    CASE_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    JUSTIFICATION_FIELD_NUMBER: _ClassVar[int]
    URGENCY_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    stage: str
    case_reference: str
    justification: str
    urgency: Urgency
    def __init__(self, purpose: _Optional[str] = ..., stage: _Optional[str] = ..., case_reference: _Optional[str] = ..., justification: _Optional[str] = ..., urgency: _Optional[_Union[Urgency, str]] = ...) -> None: ...
