# The backend worker pool. Build from the repository root:
#   docker build -f docker/backend.Dockerfile -t github-telemetry-backend .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BACKEND_HEARTBEAT_FILE=/tmp/github-telemetry-backend.heartbeat \
    BACKEND_TELEMETRY_FILE=/tmp/telemetry.jsonl

WORKDIR /app
COPY requirements/backend.txt requirements/backend.txt
RUN pip install -r requirements/backend.txt \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app

COPY common/ common/
COPY backend/ backend/

USER app

# The supervisor touches the heartbeat file while its workers run.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "backend.health"]

# Exec form: the supervisor is PID 1, gets SIGTERM, lets workers finish their batch and exits 0.
# Give it longer than a batch export takes: `docker stop --time 60` / terminationGracePeriod.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "backend"]
