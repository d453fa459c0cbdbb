# The connector image, built the way Airbyte builds Python connectors: the package is built as a wheel in a builder
# stage and installed (not editable) on the pinned base image, which runs as the non-root user airbyte.
# BASE_IMAGE must stay equal to connectorBuildOptions.baseImage in metadata.yaml.
ARG BASE_IMAGE=docker.io/airbyte/python-connector-base:4.0.2@sha256:9fdb1888c4264cf6fee473649ecb593f56f58e5d0096a87ee0b231777e2e3e73

FROM ${BASE_IMAGE} AS builder
WORKDIR /build
COPY pyproject.toml README.md ./
COPY destination_kinesis ./destination_kinesis
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${BASE_IMAGE}
USER root
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir /wheels/*.whl
WORKDIR /airbyte/integration_code
COPY --chmod=755 entrypoint.sh ./entrypoint.sh
ENV AIRBYTE_ENTRYPOINT="/airbyte/integration_code/entrypoint.sh"
USER airbyte
ENTRYPOINT ["/airbyte/integration_code/entrypoint.sh"]

LABEL io.airbyte.name=airbyte/destination-kinesis
LABEL io.airbyte.version=1.0.0
