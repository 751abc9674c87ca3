# syntax=docker/dockerfile:1
# The one image every openfn-stream service runs. The entry point is
# `python -m`, so the command names the service (`services.runner`, …); the
# Helm chart in deploy/helm does that, and runs `openfn migrate` and
# `openfn topics` from the same image.
#
#   docker build -t openfn-stream:0.1.0 .
#
# The base is pinned to an exact Python and Debian release. To pin the bytes
# too, add the digest your registry reports: python:3.11.13-slim-bookworm@sha256:…
FROM python:3.11.13-slim-bookworm AS base

FROM base AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/openfn
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared/ shared/
COPY services/ services/
COPY cli/ cli/
COPY devstack/ devstack/
COPY adaptors/ adaptors/
# The platform and its adaptors only: no dev or local extras.
RUN /opt/openfn/bin/pip install . \
 && /opt/openfn/bin/python -m compileall -q /opt/openfn

FROM base
RUN groupadd --system --gid 10001 openfn \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin openfn
COPY --from=build /opt/openfn /opt/openfn
# Byte code is compiled at build time; the root filesystem is read-only at
# run time, and /tmp is the only writable place (an emptyDir in the chart).
ENV PATH=/opt/openfn/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
WORKDIR /tmp
USER 10001:10001
EXPOSE 8000 8001 9000
ENTRYPOINT ["python", "-m"]
CMD ["services.inbox_gateway"]
