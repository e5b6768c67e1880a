# syntax=docker/dockerfile:1
# Base images: exact version tags. Their digests could not be looked up where this file
# was written; to pin one, pass it: --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:...
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# Stage 1: the control plane and yq, built from the same Go pins as `make up`.
# Only the pins and the builder (standard library only) are copied in, before any of
# the application: editing the app never reruns this 10-minute build.
FROM ${GO_IMAGE} AS controlplane
RUN apt-get update && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY gopins/kube/ gopins/kube/
COPY gopins/etcd/ gopins/etcd/
COPY gopins/kwok/ gopins/kwok/
COPY gopins/yq/ gopins/yq/
COPY labapp/clusters/localcluster/__main__.py labapp/clusters/localcluster/build.py \
     labapp/clusters/localcluster/errors.py labapp/clusters/localcluster/
# Empty package files: the builder needs nothing else of labapp.
RUN touch labapp/__init__.py labapp/clusters/__init__.py labapp/clusters/localcluster/__init__.py
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    python3 -m labapp.clusters.localcluster --cache /opt/localcluster

# Stage 2: the application: web, workers, beat, the tracker and the local control plane.
FROM ${PYTHON_IMAGE} AS app
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends grep coreutils \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --user-group --shell /usr/sbin/nologin labapp
WORKDIR /app
# Dependencies before the source, so a code change keeps this layer.
COPY pyproject.toml constraints.txt ./
COPY labapp/__init__.py labapp/celery.py labapp/
RUN pip install -q -c constraints.txt .
COPY --from=controlplane /opt/localcluster /opt/localcluster
# The source, owned by root: the app user reads it and cannot change it.
COPY . .
ENV LABAPP_LOCALCLUSTER_CACHE=/opt/localcluster \
    LABAPP_VAR_DIR=/var/lib/labapp \
    LABAPP_STATIC_ROOT=/app/staticfiles \
    DJANGO_DEBUG=false
RUN mkdir -p /var/lib/labapp && chown labapp:labapp /var/lib/labapp \
    && DJANGO_SECRET_KEY=build-only-collectstatic-key-0123456789abcdefghijklmnop \
       python manage.py collectstatic --noinput -v 0
USER labapp:labapp
EXPOSE 8000
# One uvicorn process per core unless LABAPP_WEB_WORKERS says otherwise.
CMD ["sh", "-c", "export WEB_CONCURRENCY=${LABAPP_WEB_WORKERS:-$(nproc)} && exec python -m uvicorn labapp.asgi:application --host 0.0.0.0 --port 8000 --log-config labapp/ops/uvicorn_logging.json"]
