"""Integration tests: the installed console script against a local Kinesis (kinesalite)."""
