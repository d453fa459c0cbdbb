"""A sample sync into a local Kinesis emulator, end to end, with what landed shown. Run it with scripts/quickstart.

It starts kinesalite on a free port of 127.0.0.1, writes a config, a catalog and 1,000 sample messages into
.quickstart/, runs `destination-kinesis write` exactly as Airbyte would, prints the states the connector
acknowledged, reads every record back from every shard, and stops the emulator. The config goes with the emulator
(its endpoint answers no more, and a sync against it would retry for minutes); the catalog and the messages stay.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integration_tests.kinesis_emulator import read_stream, start_kinesalite  # noqa: E402

WORK = ROOT / ".quickstart"
STREAMS = [("shop", "orders"), (None, "customers")]
RECORDS_PER_STREAM = 500
STATE_EVERY = 100


def sample_messages() -> list[dict]:
    messages: list[dict] = []
    for i in range(RECORDS_PER_STREAM):
        for namespace, name in STREAMS:
            data = {"id": i, "name": f"{name} #{i}", "amount": "12.50", "big_id": 123456789012345678901234567890 + i}
            messages.append({"type": "RECORD", "record": {"namespace": namespace, "stream": name, "data": data,
                                                          "emitted_at": 1_700_000_000_000 + i}})
            if (i + 1) % STATE_EVERY == 0:
                descriptor = {"name": name, "namespace": namespace}
                messages.append({"type": "STATE", "state": {
                    "type": "STREAM", "stream": {"stream_descriptor": descriptor, "stream_state": {"cursor": i}},
                    "sourceStats": {"recordCount": float(STATE_EVERY)}, "id": len(messages)}})
    return messages


def main() -> None:
    WORK.mkdir(exist_ok=True)
    try:
        sync_and_show()
    finally:
        (WORK / "config.json").unlink(missing_ok=True)
    print(f"\nThe emulator is stopped and its config removed; the catalog and the messages are in "
          f"{WORK.relative_to(ROOT)}/. To write them to your own Kinesis, put your settings in a config file (see "
          f"docs/kinesis.md) and run:\n  .venv/bin/destination-kinesis write --config CONFIG "
          f"--catalog {WORK.relative_to(ROOT)}/catalog.json < {WORK.relative_to(ROOT)}/input.jsonl")


def sync_and_show() -> None:
    """Start the emulator, run the sync against it, show what came out and what landed; stop the emulator."""
    with start_kinesalite() as emulator:
        print(f"kinesalite (local Kinesis) listening on {emulator.endpoint}")
        config = {"endpoint": emulator.endpoint, "region": "us-east-1", "accessKey": "local", "privateKey": "local",
                  "shardCount": 2, "bufferSize": 100}
        catalog = {"streams": [{"stream": {"name": name, "namespace": namespace, "json_schema": {},
                                           "supported_sync_modes": ["incremental"]},
                                "sync_mode": "incremental", "destination_sync_mode": "append"}
                               for namespace, name in STREAMS]}
        (WORK / "config.json").write_text(json.dumps(config, indent=2))
        (WORK / "catalog.json").write_text(json.dumps(catalog, indent=2))
        (WORK / "input.jsonl").write_text("".join(json.dumps(m) + "\n" for m in sample_messages()))

        command = [str(Path(sys.executable).parent / "destination-kinesis"), "write",
                   "--config", str(WORK / "config.json"), "--catalog", str(WORK / "catalog.json")]
        print("running: " + " ".join(command) + " < .quickstart/input.jsonl")
        with open(WORK / "input.jsonl", "rb") as stdin:
            result = subprocess.run(command, stdin=stdin, capture_output=True, check=False)
        outputs = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        for message in outputs:
            if message["type"] == "LOG":
                print(f"  LOG   {message['log']['message']}")
            elif message["type"] == "STATE":
                state = message["state"]
                descriptor = state["stream"]["stream_descriptor"]
                print(f"  STATE id={state.get('id')} stream={descriptor['name']} "
                      f"cursor={state['stream']['stream_state']['cursor']} "
                      f"destinationStats={state['destinationStats']}")
            else:
                print(f"  {message['type']} {json.dumps(message)[:300]}")
        print(f"exit code {result.returncode}")
        if result.returncode != 0:
            sys.exit(result.returncode)

        print("\nWhat landed in Kinesis (read back from every shard):")
        for namespace, name in STREAMS:
            kinesis_name = f"{namespace or ''}_{name}"
            records = read_stream(emulator.endpoint, kinesis_name)
            shards = sorted({r["shard_id"] for r in records})
            print(f"  stream '{kinesis_name}': {len(records)} records over {len(shards)} shards; first one:")
            print(f"    partition key {records[0]['partition_key']}")
            print(f"    data {records[0]['data'].decode()}")
            assert len(records) == RECORDS_PER_STREAM, f"expected {RECORDS_PER_STREAM} records in {kinesis_name}"


if __name__ == "__main__":
    main()
