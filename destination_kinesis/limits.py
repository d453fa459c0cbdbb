"""Limits of the Kinesis Data Streams API that the producer must respect (see the PutRecords and CreateStream docs)."""

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
