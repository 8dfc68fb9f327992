# The webhook frontend: Flask under gunicorn. Build from the repository root:
#   docker build -f docker/frontend.Dockerfile -t github-telemetry-frontend .
# Pinned by digest: every rebuild starts from the same bytes. To move to a newer
# python:3.11-slim, read its digest with `docker buildx imagetools inspect python:3.11-slim`
# ("Digest:") and put it in both Dockerfiles, which a test holds equal; then rebuild and test.
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080

WORKDIR /app
# Every transitive dependency pinned with its hashes (`make lock`): pip refuses anything else.
# --no-deps: the lock is the whole closure, so pip installs it as written and resolves nothing
# (pip's resolver would ask for a dependency's extras, e.g. hishel[httpx], as a separate pin).
COPY requirements/frontend.lock requirements/frontend.lock
RUN pip install --require-hashes --no-deps -r requirements/frontend.lock \
    && pip check \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app

COPY common/ common/
COPY frontend/ frontend/

USER app
EXPOSE 8080

# No curl in a slim image: the interpreter itself asks /health.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8080'), timeout=4)"]

# Exec form: gunicorn is PID 1 and receives SIGTERM itself for a graceful stop.
CMD ["gunicorn", "--config", "frontend/gunicorn.conf.py", "frontend.app:create_app()"]
