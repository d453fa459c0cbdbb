"""Airbyte destination that writes syncs into Amazon Kinesis Data Streams."""
