"""Limits of the Kinesis Data Streams API that the producer must respect (see the PutRecords and CreateStream docs),
and the unit AWS bills writes in."""

MIB = 1024 * 1024

#: Entries in one PutRecords call.
MAX_RECORDS_PER_REQUEST = 500
#: Bytes in one PutRecords call, data plus partition keys, on a stream with the default record size.
MAX_REQUEST_BYTES = 5 * MIB
#: Bytes in one record, data plus partition key, on a stream with the default record size.
MAX_RECORD_BYTES = 1 * MIB
#: Unicode characters in a partition key.
MAX_PARTITION_KEY_CHARS = 256
#: Characters in a stream name; allowed characters are ``[a-zA-Z0-9_.-]``.
MAX_STREAM_NAME_CHARS = 128
#: Records one shard takes per second (provisioned and on-demand alike); entries beyond it are throttled.
SHARD_RECORDS_PER_SECOND = 1000
#: Bytes (data plus partition keys) one shard takes per second.
SHARD_BYTES_PER_SECOND = 1 * MIB

#: Bytes of a PUT payload unit: AWS bills each record written one unit per started 25 KiB (data plus partition key).
PUT_PAYLOAD_UNIT_BYTES = 25 * 1024


def put_payload_units(record_bytes: int) -> int:
    """PUT payload units billed for one Kinesis record of ``record_bytes`` (its data plus its partition key)."""
    return -(-record_bytes // PUT_PAYLOAD_UNIT_BYTES)
