"""Cutting a run of stream messages into batches that stay well inside gRPC's message limit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from google.protobuf.message import Message

from mash.grpc_options import MAX_MESSAGE_BYTES

# An agent answers at most this many queries at once (see mash/agent/link.py).
MAX_BATCH = 16
MAX_BATCH_BYTES = MAX_MESSAGE_BYTES // 2

M = TypeVar("M", bound=Message)


def batches(items: Sequence[M], max_count: int = MAX_BATCH,
            max_bytes: int = MAX_BATCH_BYTES) -> Iterator[list[M]]:
    """`items` in order, in runs of at most `max_count` whose serialised sizes add up to at
    most `max_bytes` (an item larger than that on its own goes alone)."""
    run: list[M] = []
    size = 0
    for item in items:
        item_size = item.ByteSize()
        if run and (len(run) == max_count or size + item_size > max_bytes):
            yield run
            run, size = [], 0
        run.append(item)
        size += item_size
    if run:
        yield run
