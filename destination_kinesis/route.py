"""One Airbyte stream's route to Kinesis: its Kinesis stream, checkpoint lane and record options."""

from __future__ import annotations

from dataclasses import dataclass, field

from destination_kinesis.checkpoint import Lane
from destination_kinesis.encoder import Encoder, Partitioner
from destination_kinesis.limits import MAX_RECORD_BYTES
from destination_kinesis.messages import StreamKey


@dataclass(slots=True, eq=False)  # compared and hashed as itself: the batcher keys each route's open run by it
class Route:
    """Where one Airbyte stream's records go and how they are written: settings only (what became of its records is
    counted by the batcher, see :class:`~destination_kinesis.batcher.RouteStats`).

    ``partitioner`` None means the ``_airbyte_ab_id`` is the partition key; ``encoder`` None means the default
    envelope (:func:`~destination_kinesis.encoder.payload`); ``skip_oversize`` skips records over
    ``max_record_bytes`` instead of failing; ``ordered`` keeps each partition key's records in input order
    (``ordering: per_key``; only keys made from the data need it). A route with the default key and envelope is
    ``fast``: only fast routes take the inline path of :meth:`~destination_kinesis.writer.Writer._handle_lines`.
    """

    key: StreamKey
    kinesis_name: str
    lane: Lane
    max_record_bytes: int = MAX_RECORD_BYTES
    partitioner: Partitioner | None = None
    encoder: Encoder | None = None
    skip_oversize: bool = False
    ordered: bool = False
    #: Records are packed into KPL aggregates (aggregation kpl on a stream with a shard map).
    packing: bool = False
    fast: bool = field(init=False)

    def __post_init__(self) -> None:
        self.fast = self.partitioner is None and self.encoder is None

