"""A stand-in for GitHub's REST API over real HTTP: hooks' deliveries, workflow runs and jobs.

It serves the documented shapes with `Link` headers (cursors for deliveries, pages for runs and
jobs), checks the credential, sends rate-limit headers, records every request, and can be told
to answer the next matching request with an error (a secondary limit, a 422).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

TOKEN = "ghp_standin_token"
INSTALLATION_ID = 4242
INSTALLATION_TOKEN = "ghs_standin_installation"
MAX_FILTERED_RUNS = 1000


@dataclass
class Fault:
    """Answer the next `times` requests matching `method` and `path` with `status`."""

    method: str
    path: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class StandIn:
    """The stand-in's data and what it saw; change it between requests from the test."""

    repository: dict[str, Any]
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # newest first
    payloads: dict[int, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)  # the latest attempt of each
    attempts: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    jobs: dict[tuple[int, int], list[dict[str, Any]]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    app_jwt_seen: list[str] = field(default_factory=list)
    remaining: int = 5000
    on_redeliver: Any = None  # called with the delivery id of each accepted POST

    def posts(self) -> list[str]:
        """The paths of the POSTs received, in order."""
        return [path for method, path in self.requests if method == "POST"]


def _link(base: str, query: dict[str, Any]) -> str:
    return f'<{base}?{urlencode(query)}>; rel="next"'


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        path, query = url.path, {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with self.server.lock:
            state.requests.append((method, path))
            fault = next(
                (f for f in state.faults if f.method == method and re.fullmatch(f.path, path)),
                None,
            )
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    state.faults.remove(fault)
                self._send(fault.status, fault.body, fault.headers)
                return
            if not self._authorized(path):
                self._send(401, {"message": "Bad credentials", "status": "401"})
                return
            status, body, headers = self._route(method, path, query)
        self._send(status, body, headers)

    def _authorized(self, path: str) -> bool:
        header = self.headers.get("Authorization", "")
        if path.startswith("/app/") or path.endswith("/installation"):
            if header.startswith("Bearer ") and header.count(".") == 2:
                self.server.state.app_jwt_seen.append(path)
                return True
            return False
        return header in {f"token {TOKEN}", f"Bearer {TOKEN}", f"token {INSTALLATION_TOKEN}"}

    def _route(
        self, method: str, path: str, query: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        hook = r"(?:/repos/[^/]+/[^/]+/hooks/\d+|/orgs/[^/]+/hooks/\d+|/app/hook)/deliveries"
        repo = r"/repos/[^/]+/[^/]+"
        if method == "POST" and re.fullmatch(r"/app/installations/\d+/access_tokens", path):
            token = {"token": INSTALLATION_TOKEN, "expires_at": "2099-01-01T00:00:00Z"}
            return 201, token, {}
        if re.fullmatch(rf"{repo}/installation|/orgs/[^/]+/installation", path):
            return 200, {"id": INSTALLATION_ID, "app_id": 1}, {}
        if method == "POST" and (match := re.fullmatch(rf"{hook}/(\d+)/attempts", path)):
            if state.on_redeliver is not None:
                state.on_redeliver(int(match.group(1)))
            return 202, {}, {}
        if match := re.fullmatch(rf"{hook}/(\d+)", path):
            return self._delivery(int(match.group(1)))
        if re.fullmatch(hook, path):
            return self._deliveries(path, query)
        if re.fullmatch(repo, path):
            return 200, state.repository, {}
        if re.fullmatch(rf"{repo}/actions/runs|{repo}/actions/workflows/[^/]+/runs", path):
            return self._runs(path, query)
        if match := re.fullmatch(rf"{repo}/actions/runs/(\d+)/attempts/(\d+)", path):
            found = state.attempts.get((int(match.group(1)), int(match.group(2))))
            return (200, found, {}) if found else (404, {"message": "Not Found"}, {})
        if match := re.fullmatch(rf"{repo}/actions/runs/(\d+)/attempts/(\d+)/jobs", path):
            jobs = state.jobs.get((int(match.group(1)), int(match.group(2))), [])
            return self._page(path, query, jobs, "jobs", len(jobs))
        return 404, {"message": "Not Found"}, {}

    def _delivery(self, delivery_id: int) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        item = next((d for d in state.deliveries if d["id"] == delivery_id), None)
        if item is None:
            return 404, {"message": "Not Found"}, {}
        request = {"headers": {"X-GitHub-Event": item["event"]}, "payload": None}
        request["payload"] = state.payloads.get(delivery_id)
        return 200, {**item, "url": "https://example.invalid/webhook", "request": request}, {}

    def _deliveries(self, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        items = self.server.state.deliveries
        per_page = int(query.get("per_page", 30))
        start = 0
        if "cursor" in query:
            start = next(
                i for i, d in enumerate(items) if d["guid"] + str(d["id"]) == query["cursor"]
            )
        page = items[start : start + per_page]
        headers: dict[str, str] = {}
        if start + per_page < len(items):
            after = items[start + per_page]
            cursor = after["guid"] + str(after["id"])
            headers["Link"] = _link(self._base(path), {"per_page": per_page, "cursor": cursor})
        return 200, page, headers

    def _runs(self, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        runs = self.server.state.runs
        if "/workflows/" in path:
            workflow = path.split("/")[-2]
            runs = [
                r for r in runs if r["path"].endswith(workflow) or str(r["workflow_id"]) == workflow
            ]
        if "status" in query:
            runs = [r for r in runs if r["status"] == query["status"]]
        if "created" in query:
            low, _, high = query["created"].partition("..")
            runs = [r for r in runs if low <= r["created_at"] <= high]
        runs = sorted(runs, key=lambda r: r["created_at"], reverse=True)
        # A filtered list serves at most 1,000 runs, whatever its total_count says.
        return self._page(path, query, runs[:MAX_FILTERED_RUNS], "workflow_runs", len(runs))

    def _page(
        self, path: str, query: dict[str, str], items: list[Any], key: str, total: int
    ) -> tuple[int, Any, dict[str, str]]:
        per_page, page = int(query.get("per_page", 30)), int(query.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers: dict[str, str] = {}
        if page * per_page < len(items):
            headers["Link"] = _link(self._base(path), {**query, "page": page + 1})
        return 200, {"total_count": total, key: chunk}, headers

    def _base(self, path: str) -> str:
        return f"{self.server.url}{path}"

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        state = self.server.state
        state.remaining = max(state.remaining - 1, 0)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ratelimit-limit", "5000")
        self.send_header("x-ratelimit-remaining", str(state.remaining))
        self.send_header("x-ratelimit-reset", "4102444800")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: StandIn) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@dataclass
class Running:
    """A started stand-in: its URL and its state."""

    url: str
    state: StandIn


def serve(state: StandIn) -> Iterator[Running]:
    """Run the stand-in on a free loopback port until the generator is closed."""
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Running(server.url, state)
    finally:
        server.shutdown()
        server.server_close()
