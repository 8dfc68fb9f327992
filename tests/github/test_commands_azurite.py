"""Both commands end to end: command line, stand-in, and the ledger table and queue on Azurite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend import backfill, recover
from common.azure_queue import create_queue
from common.envelope import decode_message
from common.settings import StorageSettings
from tests.github.conftest import REPO
from tests.github.standin import TOKEN, Running
from tests.github.test_backfill import add_run
from tools.payloads import workflow_run_payload


def test_recover_twice_posts_once_and_keeps_its_state_in_the_table(
    github: Running, storage_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    delivered_at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    github.state.deliveries.append(
        {
            "id": 77,
            "guid": "lost",
            "delivered_at": delivered_at,
            "status_code": 503,
            "event": "workflow_run",
            "action": "completed",
        }
    )
    github.state.payloads[77] = workflow_run_payload("completed")
    env = {
        **storage_env,
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_API_URL": github.url,
        "GITHUB_REDELIVERY_INTERVAL_SECONDS": "0",
    }
    argv = ["--repo", f"{REPO.owner}/{REPO.name}", "--hook-id", "9"]

    codes = [recover.main(argv, env), recover.main(argv, env)]

    out = capsys.readouterr().out.splitlines()
    assert codes == [0, 0]
    assert github.state.posts() == [
        f"/repos/{REPO.owner}/{REPO.name}/hooks/9/deliveries/77/attempts"
    ]
    assert out[0].endswith(
        "seen 1, failed 1, already exported 0, redelivered 1, "
        "awaiting an earlier redelivery 0, given up 0"
    )
    assert "redelivered 0, awaiting an earlier redelivery 1" in out[1]


def test_backfill_enqueues_on_the_queue_and_resumes_from_its_checkpoints(
    github: Running,
    storage_env: dict[str, str],
    storage_settings: StorageSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_run(github, 8179265011, "2024-03-05T10:00:00Z", attempts=2)
    env = {**storage_env, "GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.url}
    argv = ["--repo", f"{REPO.owner}/{REPO.name}", "--since", "2024-03-04", "--until", "2024-03-07"]

    codes = [backfill.main(argv, env), backfill.main(argv, env)]

    out = capsys.readouterr().out.splitlines()
    assert codes == [0, 0]
    assert "windows 3 (0 already done), runs 1, attempts 2, jobs 2, envelopes enqueued 4" in out[0]
    assert "windows 3 (3 already done), runs 0" in out[1]
    queue = create_queue(storage_settings)
    events = [e.event for m in queue.receive(32, 30) for e in decode_message(m.content)]
    assert sorted(events) == ["workflow_job"] * 2 + ["workflow_run"] * 2
