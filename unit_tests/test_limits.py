"""limits: the Kinesis API limits the producer respects, as documented for PutRecords and CreateStream."""

from destination_kinesis import limits


def test_limits_match_the_kinesis_api() -> None:
    """500 entries and 5 MiB per PutRecords, 1 MiB per record, 256-character keys, 128-character stream names."""
    assert limits.MIB == 1_048_576
    assert limits.MAX_RECORDS_PER_REQUEST == 500
    assert limits.MAX_REQUEST_BYTES == 5 * 1_048_576
    assert limits.MAX_RECORD_BYTES == 1_048_576
    assert limits.MAX_PARTITION_KEY_CHARS == 256
    assert limits.MAX_STREAM_NAME_CHARS == 128


def test_put_payload_units_are_started_25_kib() -> None:
    """AWS bills one PUT payload unit per started 25 KiB of a record: 1 byte and 25,600 bytes are one, 1 MiB is 41."""
    assert limits.PUT_PAYLOAD_UNIT_BYTES == 25_600
    assert [limits.put_payload_units(size) for size in (1, 25_600, 25_601, 51_200, 51_201, 1_048_576)] == [
        1, 1, 2, 2, 3, 41]
