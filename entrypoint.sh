#!/bin/sh
# The image's entrypoint (AIRBYTE_ENTRYPOINT): the platform runs it with spec, check or write and their arguments.
exec destination-kinesis "$@"
