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
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

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


def main(argv: list[str] | None = None) -> int:
    """Send the demo day to a frontend and print the summary of what arrived."""
    from tools.report import format_report, summarize_expected, summarize_items, write_dashboard  # noqa: I001
    from tools.devstack import local_secret, var_dir
    from backend.settings import telemetry_file
    from common.settings import environment

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8080/webhook")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--telemetry-file", type=Path)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the sink")
    args = parser.parse_args(argv)
    env = environment()
    secret = env.get("GITHUB_WEBHOOK_SECRET", "").split(",")[0].strip() or local_secret(
        var_dir(env) / "webhook-secret"
    )
    sink = args.telemetry_file or telemetry_file(env)
    scenario = build_scenario(args.seed, args.runs)
    print(f"sending {len(scenario.deliveries)} deliveries for {args.runs} runs to {args.url}")
    statuses = send_all(scenario, args.url, secret)
    print("answers: " + ", ".join(f"{count} x {code}" for code, count in sorted(statuses.items())))
    if set(statuses) != {202}:
        print("some deliveries were not accepted; is `make run` going?", file=sys.stderr)
        return 1
    items = wait_for_sink(sink, scenario, args.timeout)
    print()
    print(format_report(summarize_items(items), summarize_expected(scenario.expected)))
    print()
    print(f"dashboard: {write_dashboard(items, var_dir(env) / 'report.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
