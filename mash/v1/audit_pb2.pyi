from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WitnessStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WITNESS_STATUS_UNSPECIFIED: _ClassVar[WitnessStatus]
    WITNESS_STATUS_ACCEPTED: _ClassVar[WitnessStatus]
    WITNESS_STATUS_CONFLICT: _ClassVar[WitnessStatus]
    WITNESS_STATUS_REFUSED: _ClassVar[WitnessStatus]
WITNESS_STATUS_UNSPECIFIED: WitnessStatus
WITNESS_STATUS_ACCEPTED: WitnessStatus
WITNESS_STATUS_CONFLICT: WitnessStatus
WITNESS_STATUS_REFUSED: WitnessStatus

class AuditHead(_message.Message):
    __slots__ = ("payload", "signature", "public_key", "proof_from_size", "consistency_proof")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    PROOF_FROM_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_PROOF_FIELD_NUMBER: _ClassVar[int]
    payload: str
    signature: str
    public_key: bytes
    proof_from_size: int
    consistency_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, payload: _Optional[str] = ..., signature: _Optional[str] = ..., public_key: _Optional[bytes] = ..., proof_from_size: _Optional[int] = ..., consistency_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class AuditWitness(_message.Message):
    __slots__ = ("status", "origin", "size", "known_size", "reason", "cosignature_payload", "cosignature", "witness_public_key")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    KNOWN_SIZE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COSIGNATURE_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    COSIGNATURE_FIELD_NUMBER: _ClassVar[int]
    WITNESS_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    status: WitnessStatus
    origin: str
    size: int
    known_size: int
    reason: str
    cosignature_payload: str
    cosignature: str
    witness_public_key: bytes
    def __init__(self, status: _Optional[_Union[WitnessStatus, str]] = ..., origin: _Optional[str] = ..., size: _Optional[int] = ..., known_size: _Optional[int] = ..., reason: _Optional[str] = ..., cosignature_payload: _Optional[str] = ..., cosignature: _Optional[str] = ..., witness_public_key: _Optional[bytes] = ...) -> None: ...
