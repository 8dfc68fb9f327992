"""A day of a made-up organization's GitHub Actions, as signed webhook deliveries.

`make demo` sends it to a running frontend (`make run`), waits for the backend to write the
telemetry to the local sink, then prints `make report`'s summary of exactly those runs beside
what was sent, so a new user can see the pipeline count correctly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.settings import FILE_SINK, telemetry_file
from common.settings import (
    BACKEND_PREFIX,
    EnvReader,
    SettingsError,
    StorageSettings,
    environment,
    load_storage_settings,
)
from frontend.signature import sign
from tools.demo_day import Delivery, Scenario, build_scenario

__all__ = ["build_scenario", "main", "send", "send_all", "wait_for_sink"]


def send(delivery: Delivery, url: str, secret: str, timeout_s: float = 10.0) -> int:
    """POST one signed delivery and return the HTTP status (retrying 503 a few times)."""
    body = json.dumps(delivery.payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": delivery.event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
        "X-Hub-Signature-256": sign(body, secret),
        "User-Agent": "GitHub-Hookshot/demo",
    }
    for attempt in range(5):
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            if error.code != 503 or attempt == 4:
                return int(error.code)
        except urllib.error.URLError:
            if attempt == 4:
                raise
        time.sleep(0.5 * (attempt + 1))
    return 503


def send_all(scenario: Scenario, url: str, secret: str, concurrency: int = 8) -> dict[int, int]:
    """Send every delivery (in time order within each run) and count the answers by status."""
    by_run: dict[str, list[Delivery]] = {}
    for delivery in scenario.deliveries:
        body = delivery.payload.get(delivery.event, {})
        run_id = str(body.get("run_id") or body.get("id"))
        by_run.setdefault(run_id, []).append(delivery)
    statuses: dict[int, int] = {}

    def send_run(deliveries: list[Delivery]) -> list[int]:
        return [send(delivery, url, secret) for delivery in deliveries]

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for answers in pool.map(send_run, by_run.values()):
            for status in answers:
                statuses[status] = statuses.get(status, 0) + 1
    return statuses


def _sink_items(path: Path, run_ids: set[str]) -> list[dict[str, Any]]:
    from tools.report import read_items

    return [
        item
        for item in read_items(path)
        if str(item.get("properties", {}).get("workflow_run_id")) in run_ids
    ]


def wait_for_sink(path: Path, scenario: Scenario, timeout_s: float) -> list[dict[str, Any]]:
    """Wait until the sink holds every completion event of the scenario; return its items."""
    wanted = len(scenario.expected.runs) + len(scenario.expected.jobs)
    deadline = time.monotonic() + timeout_s
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        items = _sink_items(path, scenario.run_ids)
        done = sum(1 for item in items if item.get("name") in {"WorkflowRun", "WorkflowJob"})
        if done >= wanted:
            return items
        time.sleep(0.5)
    return items


DEFAULT_URL = "http://127.0.0.1:8080/webhook"
# The same day every time unless asked otherwise: two runs of `make demo` can be compared.
DEFAULT_SEED = 2026
EXIT_REFUSED = 2


@dataclass(frozen=True)
class Target:
    """Where the demo sends and where the telemetry lands, and whether all of it is local."""

    url: str
    telemetry: Path | None  # the local sink's file; None when App Insights receives it
    remote: list[str]  # what is not on this machine: "App Insights", "queue on ..."


def is_local_storage(storage: StorageSettings | None) -> bool:
    """The queue is an Azurite on this machine (or none is set, so `make run` starts one)."""
    if storage is None:
        return True
    if not storage.connection_string:
        return False  # an account name: Azure itself
    parts = dict(
        (key.strip().lower(), value.strip())
        for key, _, value in (part.partition("=") for part in storage.connection_string.split(";"))
    )
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        return True
    endpoints = [value for key, value in parts.items() if key.endswith("endpoint")]
    return bool(endpoints) and all(url_is_local(endpoint) for endpoint in endpoints)


def target(args: argparse.Namespace, env: dict[str, str]) -> Target:
    """The stack to send to: `--url`, `DEMO_URL`, or what `make run` wrote into `var/`."""
    from tools.devstack import var_dir
    from tools.stack_state import read_state

    state = read_state(var_dir(env))
    url = args.url or env.get("DEMO_URL") or (state.url if state else None) or DEFAULT_URL
    if state is not None and state.url == url:
        remote = [] if state.local_queue else ["the queue (not Azurite)"]
        if state.telemetry is None:
            remote.append("Application Insights")
        telemetry = args.telemetry_file or (Path(state.telemetry) if state.telemetry else None)
        return Target(url, telemetry, remote)
    # No `make run` of ours behind this URL: judge by the configuration the stack would read.
    remote = [] if url_is_local(url) else [f"the frontend at {url}"]
    if not is_local_storage(_storage(env)):
        remote.append("the queue (not Azurite)")
    reader = EnvReader(env, BACKEND_PREFIX)
    uses_file = reader.text("TELEMETRY_SINK") == FILE_SINK or not reader.text(
        "APPLICATIONINSIGHTS_CONNECTION_STRING"
    )
    if not uses_file:
        remote.append("Application Insights")
    sink = args.telemetry_file or (telemetry_file(env) if uses_file else None)
    return Target(url, sink, remote)


def _storage(env: dict[str, str]) -> StorageSettings | None:
    try:
        return load_storage_settings(env)
    except SettingsError:
        return None


def url_is_local(url: str) -> bool:
    """The URL names this machine."""
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in {"127.0.0.1", "localhost", "::1"}


def is_listening(url: str) -> bool:
    """The frontend behind a webhook URL answers /health."""
    health = urllib.parse.urljoin(url, "/health")
    try:
        with urllib.request.urlopen(health, timeout=5) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def build_parser() -> argparse.ArgumentParser:
    """`make demo`'s options (`DEMO_ARGS`)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="the webhook URL (default: DEMO_URL, else `make run`'s)")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the day's seed")
    parser.add_argument("--telemetry-file", type=Path)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the sink")
    parser.add_argument(
        "--yes", action="store_true", help="send even to a queue or sink that is not local"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Send the demo day to a frontend and print the summary of what arrived.

    Exits 0 when the summary matches what was sent, 1 when it does not or nothing listens,
    2 when it refuses to send made-up data to something that is not local (without `--yes`).
    """
    from tools.devstack import local_secret, var_dir
    from tools.report import format_report, summarize_expected, summarize_items, write_dashboard

    args = build_parser().parse_args(argv)
    env = environment()
    chosen = target(args, env)
    if chosen.remote and not args.yes:
        print(
            f"make demo: refusing to send made-up deliveries to {', '.join(chosen.remote)}; "
            "pass --yes (DEMO_ARGS=--yes) if that is what you want",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    if not is_listening(chosen.url):
        print(f"make demo: nothing answers at {chosen.url}: is `make run` going?", file=sys.stderr)
        return 1
    secret = env.get("GITHUB_WEBHOOK_SECRET", "").split(",")[0].strip() or local_secret(
        var_dir(env) / "webhook-secret"
    )
    scenario = build_scenario(args.seed, args.runs)
    print(
        f"sending {len(scenario.deliveries)} deliveries for {args.runs} runs "
        f"(seed {args.seed}) to {chosen.url}"
    )
    statuses = send_all(scenario, chosen.url, secret)
    print("answers: " + ", ".join(f"{count} x {code}" for code, count in sorted(statuses.items())))
    if set(statuses) != {202}:
        print("some deliveries were not accepted; see the frontend's log", file=sys.stderr)
        return 1
    if chosen.telemetry is None:
        print("telemetry goes to Application Insights: no local summary to check")
        return 0
    items = wait_for_sink(chosen.telemetry, scenario, args.timeout)
    actual, expected = summarize_items(items), summarize_expected(scenario.expected)
    print()
    print(format_report(actual, expected))
    if actual != expected:
        print(
            f"make demo: the telemetry in {chosen.telemetry} does not add up to what was sent "
            f"(if that file was removed but not the ledger in var/, try another --seed)",
            file=sys.stderr,
        )
        return 1
    print()
    print(f"dashboard: {write_dashboard(items, var_dir(env) / 'report.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
