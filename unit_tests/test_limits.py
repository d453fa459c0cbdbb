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
