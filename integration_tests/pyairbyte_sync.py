"""A sync the way a PyAirbyte user runs it: a source and this destination, each from a local executable, records
streamed from one to the other. Run by test_pyairbyte.py with the python of PyAirbyte's own virtual environment,
so it imports nothing from this repository.

usage: python pyairbyte_sync.py SOURCE_EXECUTABLE SOURCE_CONFIG DESTINATION_EXECUTABLE DESTINATION_CONFIG RESULT

Writes to RESULT a JSON object: the states PyAirbyte recorded from the destination.
"""

import json
import sys
from pathlib import Path

import airbyte as ab


def main(source_executable: str, source_config: str, destination_executable: str, destination_config: str,
         result_path: str) -> None:
    source = ab.get_source("source-faker", config=json.loads(Path(source_config).read_text()),
                           local_executable=source_executable, streams="*")
    destination = ab.get_destination("destination-kinesis", config=json.loads(Path(destination_config).read_text()),
                                     local_executable=destination_executable)
    destination.check()  # raises if the connection check fails
    # Without a cache the records flow from the source's stdout to the destination's stdin; the states the
    # destination returns go to PyAirbyte's default state cache (DuckDB, in the working directory).
    result = destination.write(source, cache=False)
    states = [json.loads(state.model_dump_json(exclude_none=True))
              for state in result.get_state_provider().state_message_artifacts]
    Path(result_path).write_text(json.dumps({"states": states}))


if __name__ == "__main__":
    main(*sys.argv[1:])
