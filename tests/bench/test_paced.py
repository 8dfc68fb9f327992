"""How a paced figure checks the host's capacity after it and paces again when it moved."""

from __future__ import annotations

import math
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from tools.bench import figures
from tools.bench.config import load_config
from tools.bench.load import LoadResult

FULL_RATE = 500.0


class ScriptedHost:
    """Stands in for `http_load`: paced runs answer everything, full-load runs read a script."""

    def __init__(self, capacities: list[float]) -> None:
        self.capacities = list(capacities)
        self.paced_at: list[float] = []

    def __call__(
        self, run: Any, port: int, tag: str, rate_per_s: float | None, duration_s: float
    ) -> LoadResult:
        if tag == "paced":
            assert rate_per_s is not None and rate_per_s > 0, "a paced run needs a rate"
            self.paced_at.append(rate_per_s)
            count = int(rate_per_s * duration_s)
            return LoadResult(
                latencies_s=[0.01] * count, statuses=Counter({202: count}), elapsed_s=duration_s
            )
        assert (tag, rate_per_s) == ("capacity", None)
        count = int(self.capacities.pop(0) * duration_s)
        return LoadResult(statuses=Counter({202: count}), elapsed_s=duration_s)


def paced_figure(
    monkeypatch: pytest.MonkeyPatch, capacities: list[float], attempts: int = 3
) -> tuple[figures.Figure, ScriptedHost]:
    host = ScriptedHost(capacities)
    monkeypatch.setattr(figures, "http_load", host)
    config = load_config(["--paced-attempts", str(attempts), "--duration-s", "1"], env={})
    figure = figures._paced(SimpleNamespace(config=config), 0, "paced", FULL_RATE)  # type: ignore[arg-type]
    return figure, host


def test_a_host_that_kept_its_capacity_is_paced_once(monkeypatch: pytest.MonkeyPatch) -> None:
    figure, host = paced_figure(monkeypatch, [500.0])

    assert host.paced_at == [400.0]
    assert (figure.details["held"], figure.details["attempts"]) == (True, 1)
    assert figure.details["load_of_capacity"] == 0.8
    assert figure.details["attempts_p99"] == "p99 10.0 ms at 0.80"


def test_a_host_that_slowed_down_is_paced_again_at_its_newer_capacity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 400/s against 300/s after it was overload; 80% of 300 against 300 holds
    figure, host = paced_figure(monkeypatch, [300.0, 300.0])

    assert host.paced_at == [400.0, 240.0]
    assert (figure.details["held"], figure.details["attempts"]) == (True, 2)
    assert figure.details["capacity_after_per_s"] == 300.0
    assert figure.details["attempts_p99"] == "p99 10.0 ms at 1.33, p99 10.0 ms at 0.80"


def test_the_last_attempt_is_the_figure_when_none_held(monkeypatch: pytest.MonkeyPatch) -> None:
    figure, host = paced_figure(monkeypatch, [300.0, 1000.0, 2000.0], attempts=3)

    assert host.paced_at == [400.0, 240.0, 800.0]
    assert (figure.details["held"], figure.details["attempts"]) == (False, 3)
    assert figure.details["load_of_capacity"] == 0.4
    assert host.capacities == []


def test_a_host_that_answered_nothing_is_not_paced_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # a rate of 0 would be a closed-loop run, not a paced one
    figure, host = paced_figure(monkeypatch, [0.0, 500.0], attempts=3)

    assert host.paced_at == [400.0]
    assert (figure.details["held"], figure.details["attempts"]) == (False, 1)
    assert math.isnan(float(figure.details["load_of_capacity"]))
