"""The read-back checks: what the Kinesis streams hold after a sync, and the states it printed, against its input.

:func:`assert_synced` wants every record exactly once; the numbered checks (:func:`read_back`, :class:`Coverage`,
:class:`LiveCoverage`) allow duplicates and count them, but fail on any loss or any state printed before its
records were written.
"""

from __future__ import annotations

import copy
import re
import threading
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .connector import SyncResult, error_traces
from .inputs import SEQ, Message, StreamKey, loads
from .kinesis_emulator import kinesis_client, read_stream
from .kpl import effective_hash_key, read_user_records, shard_hash_ranges, sub_records

ENVELOPE_KEYS = {"_airbyte_ab_id", "_airbyte_emitted_at", "_airbyte_data"}

RecordId = tuple[str, int]  # (Kinesis stream name, seq)



def kinesis_stream_name(namespace: str | None, name: str) -> str:
    """The Kinesis stream the connector must write an Airbyte stream to (the documented naming rule)."""
    decomposed = unicodedata.normalize("NFKD", f"{namespace or ''}_{name}")
    without_marks = "".join(char for char in decomposed if not unicodedata.combining(char))
    underscored = re.sub(r"[ \t\n\r\x0b\x0c]+", "_", without_marks)
    return re.sub(r"[^A-Za-z0-9_]", "_", underscored)[:128]



def expected_states(input_messages: list[Message]) -> list[Message]:
    """Each input STATE with ``destinationStats.recordCount`` added: records of its stream since that stream's
    previous state (STREAM), or records of all streams since the previous state (GLOBAL, LEGACY)."""
    since_stream_state: Counter[StreamKey] = Counter()
    since_any_state = 0
    states = []
    for message in input_messages:
        if message["type"] == "RECORD":
            body = message["record"]
            since_stream_state[(body.get("namespace"), body["stream"])] += 1
            since_any_state += 1
        elif message["type"] == "STATE":
            state = message["state"]
            if state.get("type") == "STREAM":
                descriptor = state["stream"]["stream_descriptor"]
                key = (descriptor.get("namespace"), descriptor["name"])
                count = since_stream_state.pop(key, 0)
            else:
                count = since_any_state
                since_stream_state.clear()
            since_any_state = 0
            expected = copy.deepcopy(message)
            expected["state"]["destinationStats"] = {"recordCount": count}
            states.append(expected)
    return states



def assert_states_echoed(input_messages: list[Message], result: SyncResult) -> None:
    """Every input STATE comes out once, in input order, unchanged but for the added destinationStats."""
    expected = expected_states(input_messages)
    actual = result.states
    assert len(actual) == len(expected), f"{len(actual)} states out, {len(expected)} in; {result.describe()}"
    for position, (out, want) in enumerate(zip(actual, expected, strict=True)):
        out, want = copy.deepcopy(out), copy.deepcopy(want)
        out_stats, want_stats = out["state"].pop("destinationStats", None), want["state"].pop("destinationStats")
        assert out == want, f"state #{position} changed on its way through"
        assert isinstance(out_stats, dict) and set(out_stats) == {"recordCount"}, f"state #{position}: {out_stats}"
        assert out_stats["recordCount"] == want_stats["recordCount"], f"state #{position} recordCount"



def assert_records_written(endpoint: str, input_messages: list[Message]) -> None:
    """Kinesis holds exactly the input records, each once, every shard of every stream read back.

    Matching goes by ``emitted_at``, which the tests keep unique per stream. Each Kinesis record must be the JSON
    envelope {_airbyte_ab_id: uuid4 = partition key, unique; _airbyte_emitted_at: int; _airbyte_data: the input}.
    """
    expected: dict[str, dict[int, Any]] = {}
    for message in input_messages:
        if message["type"] != "RECORD":
            continue
        body = message["record"]
        by_time = expected.setdefault(kinesis_stream_name(body.get("namespace"), body["stream"]), {})
        assert body["emitted_at"] not in by_time, "test inputs must keep emitted_at unique per stream"
        by_time[body["emitted_at"]] = body["data"]

    ab_ids: set[str] = set()
    for stream_name, by_time in expected.items():
        written = read_stream(endpoint, stream_name)
        assert len(written) == len(by_time), f"{stream_name}: {len(written)} records written, {len(by_time)} sent"
        seen: set[int] = set()
        for item in written:
            envelope = loads(item["data"])
            assert isinstance(envelope, dict) and set(envelope) == ENVELOPE_KEYS, f"{stream_name}: {envelope!r:.300}"
            ab_id = envelope["_airbyte_ab_id"]
            assert isinstance(ab_id, str) and str(uuid.UUID(ab_id)) == ab_id and uuid.UUID(ab_id).version == 4
            assert item["partition_key"] == ab_id
            assert ab_id not in ab_ids, f"duplicate _airbyte_ab_id {ab_id}"
            ab_ids.add(ab_id)
            emitted_at = envelope["_airbyte_emitted_at"]
            assert type(emitted_at) is int and emitted_at in by_time, f"{stream_name}: emitted_at {emitted_at!r}"
            assert emitted_at not in seen, f"{stream_name}: record emitted at {emitted_at} written twice"
            seen.add(emitted_at)
            assert envelope["_airbyte_data"] == by_time[emitted_at], f"{stream_name}: data of {emitted_at} differs"



def assert_synced(endpoint: str, stdin_bytes: bytes, result: SyncResult) -> None:
    """The sync succeeded, Kinesis holds exactly the input records and every state came back right."""
    assert result.process.returncode == 0, result.describe()
    assert not error_traces(result.messages), result.describe()
    input_messages = [loads(line) for line in stdin_bytes.splitlines() if line.strip()]
    input_messages = [message for message in input_messages if message.get("type") in ("RECORD", "STATE")]
    assert_records_written(endpoint, input_messages)
    assert_states_echoed(input_messages, result)



def record_seq(data: bytes) -> int | None:
    """The ``seq`` of a Kinesis record's data, or None when it is not the envelope of a numbered record."""
    envelope = loads(data)
    payload = envelope.get("_airbyte_data") if isinstance(envelope, dict) else None
    seq = payload.get(SEQ) if isinstance(payload, dict) else None
    return seq if type(seq) is int else None



def _scope(message: Message, all_streams: Iterable[str]) -> list[str]:
    """The Kinesis streams whose earlier records a STATE message vouches for."""
    state = message["state"]
    if state.get("type") == "STREAM":
        descriptor = state["stream"]["stream_descriptor"]
        return [kinesis_stream_name(descriptor.get("namespace"), descriptor["name"])]
    return list(all_streams)



class Coverage:
    """Which records each input state vouches for: every earlier record of its scope.

    :meth:`missing` answers, for a state the connector emitted, which of those records are not (yet) in a set of
    written record ids. It remembers how far each stream is known to be written, so checking many states against a
    growing set costs one pass over the input.
    """

    def __init__(self, input_messages: list[Message]):
        self.order: dict[str, list[int]] = {}  # Kinesis stream → its seqs in input order
        self._needs: dict[Any, dict[str, int]] = {}  # state id → Kinesis stream → records of it before the state
        self._written_up_to: dict[str, int] = {}
        for message in input_messages:
            if message["type"] == "RECORD":
                body = message["record"]
                name = kinesis_stream_name(body.get("namespace"), body["stream"])
                self.order.setdefault(name, []).append(body["data"][SEQ])
            elif message["type"] == "STATE":
                scope = _scope(message, self.order)
                self._needs[message["state"]["id"]] = {name: len(self.order.get(name, [])) for name in scope}

    def needs(self, state: Message) -> dict[str, int]:
        """Kinesis stream → how many of its first records (in input order) the emitted ``state`` vouches for."""
        return self._needs[state["state"]["id"]]

    def missing(self, state: Message, written: set[RecordId] | Counter[RecordId]) -> list[RecordId]:
        """The records ``state`` vouches for that are not in ``written`` (which may only grow between calls)."""
        gaps: list[RecordId] = []
        for name, needed in self.needs(state).items():
            seqs = self.order[name] if needed else []
            done = self._written_up_to.get(name, 0)
            while done < len(seqs) and (name, seqs[done]) in written:
                done += 1
            self._written_up_to[name] = done
            gaps.extend((name, seq) for seq in seqs[done:needed] if (name, seq) not in written)
        return gaps



@dataclass
class ReadBack:
    """What the Kinesis streams hold of a numbered input: how often each record is there, and its duplicates."""

    counts: Counter[RecordId]
    resent: int  # extra copies with an ab_id seen before: the same entry written again after an ambiguous failure
    rewritten: int  # extra copies with a new ab_id: the record sent again by a replayed input

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def duplicates(self) -> int:
        return self.resent + self.rewritten

    def missing(self, expected: Iterable[RecordId]) -> list[RecordId]:
        return [key for key in expected if not self.counts[key]]



def input_records(input_messages: list[Message]) -> dict[RecordId, Any]:
    """The numbered records of an input by (Kinesis stream, seq), each with its data."""
    records: dict[RecordId, Any] = {}
    for message in input_messages:
        if message["type"] == "RECORD":
            body = message["record"]
            records[(kinesis_stream_name(body.get("namespace"), body["stream"]), body["data"][SEQ])] = body["data"]
    return records



def read_back(endpoint: str, input_messages: list[Message], partition_key_is_ab_id: bool = True) -> ReadBack:
    """Read every shard of every stream the input writes to, as a KCL consumer does (aggregates de-aggregated and
    filtered: see :mod:`integration_tests.kpl`). Every record must be the envelope of an input record with its exact
    data and (unless ``partition_key_is_ab_id`` is false: keys made from the data) its ``_airbyte_ab_id`` as
    partition key; copies are counted, never refused."""
    expected = input_records(input_messages)
    counts: Counter[RecordId] = Counter()
    ab_ids: set[str] = set()
    resent = rewritten = 0
    for stream_name in dict.fromkeys(name for name, _ in expected):
        for item in read_user_records(endpoint, stream_name):
            envelope = loads(item.data)
            assert isinstance(envelope, dict) and set(envelope) == ENVELOPE_KEYS, f"{stream_name}: {envelope!r:.300}"
            ab_id = envelope["_airbyte_ab_id"]
            assert item.partition_key == ab_id or not partition_key_is_ab_id, \
                f"{stream_name}: partition key is not the ab_id"
            data = envelope["_airbyte_data"]
            key = (stream_name, data.get(SEQ) if isinstance(data, dict) else None)
            assert key in expected, f"{stream_name}: a record that is not in the input: {data!r:.200}"
            assert data == expected[key], f"{stream_name}: the data of seq {key[1]} differs from the input"
            if counts[key]:
                if ab_id in ab_ids:
                    resent += 1
                else:
                    rewritten += 1
            counts[key] += 1
            ab_ids.add(ab_id)
    return ReadBack(counts, resent, rewritten)



class LiveCoverage:
    """Checks each state the moment the connector prints it against the records the fault proxy saw Kinesis accept.

    Pass :meth:`on_written` to the :class:`~integration_tests.fault_proxy.FaultProxy` and :meth:`on_message` to the
    :class:`RunningConnector`. The proxy notes a record before it answers the connector, so a state printed after its
    records were accepted is never flagged; :attr:`early` lists the states printed before (their id and gaps).
    """

    def __init__(self, input_messages: list[Message], endpoint: str | None = None):
        self._coverage = Coverage(input_messages)
        self.written: set[RecordId] = set()
        self.early: list[tuple[Any, list[RecordId]]] = []
        self._lock = threading.Lock()
        self._endpoint = endpoint
        self._ranges: dict[str, dict[str, tuple[int, int]]] = {}
        #: Aggregates Kinesis accepted that a KCL consumer drops (a user record outside the shard's range), and
        #: records that start like an aggregate but are not a valid one.
        self.dropped = 0
        self.broken = 0

    def on_written(self, stream_name: str, data: bytes) -> None:
        seq = record_seq(data)
        with self._lock:
            self.written.add((stream_name, seq if seq is not None else -1))

    def on_landed(self, stream_name: str, data: bytes, shard_id: str) -> None:
        """Like :meth:`on_written`, as a KCL consumer reading ``shard_id`` sees the record (``endpoint`` given):
        an aggregate's user records count as written only when the KCL keeps them."""
        subs = sub_records(data)
        if subs is None:
            if data.startswith(b"\xf3\x89\x9a\xc2"):
                self.broken += 1
            self.on_written(stream_name, data)
            return
        low, high = self._range(stream_name, shard_id)
        if not all(low <= effective_hash_key(sub) <= high for sub in subs):
            self.dropped += 1
            return
        for sub in subs:
            self.on_written(stream_name, sub.data)

    def _range(self, stream_name: str, shard_id: str) -> tuple[int, int]:
        ranges = self._ranges.get(stream_name, {})
        if shard_id not in ranges:
            assert self._endpoint is not None, "LiveCoverage needs the endpoint to follow aggregates"
            ranges = self._ranges[stream_name] = shard_hash_ranges(kinesis_client(self._endpoint), stream_name)
        return ranges[shard_id]

    def on_message(self, message: Message) -> None:
        if message.get("type") != "STATE":
            return
        with self._lock:
            gaps = self._coverage.missing(message, self.written)
        if gaps:
            self.early.append((message["state"].get("id"), gaps[:5]))


def assert_stopped_covered(endpoint: str, input_messages: list[Message], result: SyncResult,
                           live: LiveCoverage) -> None:
    """A sync stopped while it wrote: no state came out before its records were in Kinesis (``live``), every state
    it printed is covered by what the streams hold, and it did not write every record (it stopped reading)."""
    assert not live.early, f"states printed before their records were in Kinesis: {live.early}"
    written = read_back(endpoint, input_messages)
    coverage = Coverage(input_messages)
    for state in result.states:
        assert not coverage.missing(state, written.counts), f"state {state['state']['id']} is not covered"
    records = sum(message["type"] == "RECORD" for message in input_messages)
    assert written.total < records, "the connector wrote every record: it did not stop reading"
