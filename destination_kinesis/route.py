"""One Airbyte stream's route to Kinesis: its Kinesis stream, checkpoint lane, record options and counters."""

from __future__ import annotations

from dataclasses import dataclass, field

from destination_kinesis.checkpoint import Lane
from destination_kinesis.encoder import Encoder, Partitioner
from destination_kinesis.limits import MAX_RECORD_BYTES
from destination_kinesis.messages import StreamKey


@dataclass(slots=True, eq=False)  # compared and hashed as itself: the batcher keys each route's open run by it
class Route:
    """Where one Airbyte stream's records go, how they are written, and how many went.

    ``partitioner`` None means the ``_airbyte_ab_id`` is the partition key; ``encoder`` None means the default
    envelope (:func:`~destination_kinesis.encoder.payload`); ``skip_oversize`` skips records over
    ``max_record_bytes`` (counted in ``rejected``) instead of failing; ``ordered`` keeps each partition key's
    records in input order (``ordering: per_key``; only keys made from the data need it). A route with the default
    key and envelope is ``fast``: only fast routes take the inline path of
    :meth:`~destination_kinesis.writer.Writer._handle_lines`.
    :attr:`records` and ``bytes`` count the records given to batches (as their runs are counted in), ``rejected`` those
    skipped.
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
    bytes: int = 0
    rejected: int = 0
    fast: bool = field(init=False)

    def __post_init__(self) -> None:
        self.fast = self.partitioner is None and self.encoder is None

    @property
    def records(self) -> int:
        """Records given to batches: those its lane counted into the checkpoint."""
        return self.lane.received
