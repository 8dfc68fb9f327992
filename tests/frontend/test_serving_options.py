"""gunicorn's worker and thread counts: whole numbers in range, or the frontend does not start."""

from __future__ import annotations

import pytest

from common.settings import SettingsError
from frontend.serving import server_options

FRONTEND = {
    "GITHUB_WEBHOOK_SECRET": "s",
    "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
}


@pytest.mark.parametrize("name", ["WEB_CONCURRENCY", "GUNICORN_THREADS"])
@pytest.mark.parametrize("raw", ["²", "٣x", "0", "-1", "1.5", "nan", "1025", "9" * 5000])
def test_a_worker_or_thread_count_that_is_not_a_count_is_refused(name: str, raw: str) -> None:
    with pytest.raises(SettingsError) as raised:
        server_options({**FRONTEND, name: raw})

    assert str(raised.value) == f"{name} must be a whole number from 1 to 1024, got {raw!r}"


def test_worker_and_thread_counts_are_read() -> None:
    options = server_options({**FRONTEND, "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": " 16 "})

    assert (options.workers, options.threads) == (3, 16)
