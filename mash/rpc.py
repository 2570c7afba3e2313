"""Registering gRPC services so that undecodable messages get a clear status.

grpc's generated registration decodes requests before our code runs, and a message that
does not decode (invalid UTF-8 in a string, broken framing, nesting past protobuf's limit)
becomes UNKNOWN plus a traceback in the log. Registering with raw bytes and decoding in the
handler turns that into INVALID_ARGUMENT with a sentence, and keeps the log clean.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from mash import rpc_errors


class BadMessage(Exception):
    """A streamed message did not decode."""


def _decoder(cls: type[Message]) -> Callable[[bytes], Message]:
    def decode(raw: bytes) -> Message:
        try:
            return cls.FromString(raw)
        except (DecodeError, RuntimeError, ValueError):
            raise BadMessage(f"not a valid {cls.DESCRIPTOR.name} (malformed protobuf, or text "
                             "that is not UTF-8)") from None
    return decode


def _unary(method: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Message]],
           decode: Callable[[bytes], Message]) -> Callable[..., Awaitable[Message]]:
    async def handler(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
        try:
            request = decode(raw)
        except BadMessage as exc:
            await rpc_errors.abort_invalid(context, str(exc), reason="MALFORMED_MESSAGE",
                                           field_path="request")
        return await method(request, context)
    return handler


def _bidi(method: Callable[..., AsyncIterator[Message]],
          decode: Callable[[bytes], Message]) -> Callable[..., AsyncIterator[Message]]:
    async def handler(raw_iterator: AsyncIterator[bytes],
                      context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Message]:
        async def requests() -> AsyncIterator[Message]:
            async for raw in raw_iterator:
                yield decode(raw)  # BadMessage ends the stream; the servicer reports it
        async for response in method(requests(), context):
            yield response
    return handler


def register(server: grpc.aio.Server, servicer: object, service: ServiceDescriptor) -> None:
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for m in service.methods:
        decode = _decoder(GetMessageClass(m.input_type))
        encode = GetMessageClass(m.output_type).SerializeToString
        impl = getattr(servicer, m.name)
        if not m.client_streaming and not m.server_streaming:
            handlers[m.name] = grpc.unary_unary_rpc_method_handler(
                _unary(impl, decode), request_deserializer=None, response_serializer=encode)
        elif m.client_streaming and m.server_streaming:
            handlers[m.name] = grpc.stream_stream_rpc_method_handler(
                _bidi(impl, decode), request_deserializer=None, response_serializer=encode)
        else:
            raise NotImplementedError(f"{service.full_name}/{m.name}: streaming kind not used")
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),))
