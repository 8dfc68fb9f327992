# The backend worker pool. Build from the repository root:
#   docker build -f docker/backend.Dockerfile -t github-telemetry-backend .
# Pinned by digest: every rebuild starts from the same bytes. To move to a newer
# python:3.11-slim, read its digest with `docker buildx imagetools inspect python:3.11-slim`
# ("Digest:") and put it in both Dockerfiles, which a test holds equal; then rebuild and test.
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# The local file sink (TELEMETRY_SINK=file) writes under /var/lib/github-telemetry: mount a
# volume there (compose does), or the file goes with the container. Without TELEMETRY_SINK=file
# the backend needs APPLICATIONINSIGHTS_CONNECTION_STRING and refuses to start without it.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BACKEND_HEARTBEAT_FILE=/tmp/github-telemetry-backend.heartbeat \
    BACKEND_TELEMETRY_FILE=/var/lib/github-telemetry/telemetry.jsonl

WORKDIR /app
# Every transitive dependency pinned with its hashes (`make lock`): pip refuses anything else.
# --no-deps: the lock is the whole closure, so pip installs it as written and resolves nothing
# (pip's resolver would ask for a dependency's extras, e.g. hishel[httpx], as a separate pin).
COPY requirements/backend.lock requirements/backend.lock
RUN pip install --require-hashes --no-deps -r requirements/backend.lock \
    && pip check \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app \
    && install -d -o app -g app /var/lib/github-telemetry

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
