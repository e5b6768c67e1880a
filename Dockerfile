# syntax=docker/dockerfile:1
# Stage 1: the control plane and yq, built from the same Go pins as `make up`.
FROM golang:1.26-bookworm AS controlplane
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY labapp/__init__.py labapp/celery.py labapp/
RUN python3 -m venv /venv && /venv/bin/pip install -q -c constraints.txt .
COPY . .
RUN LABAPP_LOCALCLUSTER_CACHE=/opt/localcluster /venv/bin/python manage.py localcluster build

# Stage 2: the application: web, worker, beat and the local control plane.
FROM python:3.11-slim-bookworm AS app
RUN apt-get update && apt-get install -y --no-install-recommends grep coreutils \
    && rm -rf /var/lib/apt/lists/* && useradd --create-home --uid 1000 labapp
WORKDIR /app
COPY pyproject.toml constraints.txt ./
COPY labapp/__init__.py labapp/celery.py labapp/
RUN pip install --no-cache-dir -q -c constraints.txt .
COPY --chown=labapp:labapp . .
COPY --from=controlplane --chown=labapp:labapp /opt/localcluster /opt/localcluster
ENV LABAPP_LOCALCLUSTER_CACHE=/opt/localcluster \
    LABAPP_VAR_DIR=/var/lib/labapp \
    DJANGO_DEBUG=false
RUN mkdir -p /var/lib/labapp && chown labapp:labapp /var/lib/labapp \
    && DJANGO_SECRET_KEY=build-only-collectstatic-key-0123456789abcdefghijklmnop \
       python manage.py collectstatic --noinput -v 0
USER labapp
EXPOSE 8000
# One uvicorn process per core unless LABAPP_WEB_WORKERS says otherwise.
CMD ["sh", "-c", "export WEB_CONCURRENCY=${LABAPP_WEB_WORKERS:-$(nproc)} && exec python -m uvicorn labapp.asgi:application --host 0.0.0.0 --port 8000"]
