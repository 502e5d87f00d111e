# One image for every linkpulse process: `linkpulse serve query|live|export|audit|worker|flusher|gateway`,
# `linkpulse migrate` and `linkpulse demo` (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LINKPULSE_RUN_DIR=/var/lib/linkpulse

WORKDIR /app

# Dependencies first, read from pyproject.toml alone, so that source edits reuse this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
# Editable install: the compiled protos and descriptor set are generated into the source tree,
# which is where the code looks for them. gcc builds the click ingestion fast path
# (services/live/_clickwire.c) and is removed again.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-deps -e . \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
    && python -m services.codegen \
    && useradd --system --home-dir /var/lib/linkpulse --create-home --shell /usr/sbin/nologin linkpulse

USER linkpulse
# 8080 HTTP (and its /metrics), 50051-50054 gRPC, 9471-9476 metrics of the other processes.
EXPOSE 8080 50051 50052 50053 50054 9471 9472 9473 9474 9475 9476
CMD ["linkpulse", "--help"]
