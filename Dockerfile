# The connector image, built the way Airbyte builds Python connectors. The builder stage installs the locked
# dependencies (image-requirements.txt: exported from poetry.lock by scripts/lock, each with its hashes) into a virtual
# environment, then the package's wheel (not an editable install) without resolving anything more; the final stage
# copies only that environment and the entrypoint onto the same pinned base image and runs as its non-root user.
# BASE_IMAGE must stay equal to connectorBuildOptions.baseImage in metadata.yaml (unit_tests/test_dockerfile.py checks).
# Only classic-builder instructions are used (no RUN --mount, COPY --chmod or heredocs), so BuildKit and the classic
# builder (which scripts/image and the docker Python SDK of integration_tests/conftest.py use) build it the same way.
ARG BASE_IMAGE=docker.io/airbyte/python-connector-base:4.0.2@sha256:9fdb1888c4264cf6fee473649ecb593f56f58e5d0096a87ee0b231777e2e3e73

FROM ${BASE_IMAGE} AS builder
WORKDIR /build
# The dependencies first, in a layer of their own that a change to the connector's code alone leaves cached.
COPY image-requirements.txt ./
RUN python -m venv /opt/destination-kinesis \
    && /opt/destination-kinesis/bin/pip install --no-cache-dir --require-hashes -r image-requirements.txt
COPY pyproject.toml README.md ./
COPY destination_kinesis ./destination_kinesis
# pip itself is not needed to run the connector, so it leaves the environment once the install is checked.
# (setuptools stays: airbyte-cdk declares it as a dependency, so the lock holds it.)
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /build/dist . \
    && /opt/destination-kinesis/bin/pip install --no-cache-dir --no-deps /build/dist/*.whl \
    && /opt/destination-kinesis/bin/pip check \
    && /opt/destination-kinesis/bin/pip uninstall --yes pip

FROM ${BASE_IMAGE}
COPY --from=builder /opt/destination-kinesis /opt/destination-kinesis
ENV PATH="/opt/destination-kinesis/bin:${PATH}"
WORKDIR /airbyte/integration_code
COPY entrypoint.sh ./
ENV AIRBYTE_ENTRYPOINT="/airbyte/integration_code/entrypoint.sh"
ENTRYPOINT ["/airbyte/integration_code/entrypoint.sh"]
# The base image creates the user airbyte (uid 1000); Airbyte's own connector template names it the same way.
# hadolint ignore=DL3066
USER airbyte

LABEL io.airbyte.name=airbyte/destination-kinesis
LABEL io.airbyte.version=1.1.0
