"""How the benchmark turns trials of a figure into the one it reports."""

from __future__ import annotations

import math

import pytest

from tools.bench.config import load_config
from tools.bench.figures import Figure, load_held
from tools.bench.trials import combine, combine_each, combine_latency, median_trial

CEILING = "queue drain (raw), 2 proc"


def backend(per_s: float, ceiling_per_s: float, elapsed_s: float = 1.0) -> Figure:
    return Figure(
        "backend drain, 2 proc", per_s, CEILING, per_s / ceiling_per_s, {"elapsed_s": elapsed_s}
    )


def test_the_median_trial_gives_the_rate_and_details_and_the_pairs_give_the_ratio() -> None:
    trials = [backend(150, 200, 10.0), backend(190, 200, 7.9), backend(120, 100, 12.5)]

    figure = combine(trials)

    assert (figure.name, figure.ceiling, figure.per_s) == ("backend drain, 2 proc", CEILING, 150)
    assert figure.details["elapsed_s"] == 10.0  # the 150/s trial's own details
    # Ratios 0.75, 0.95, 1.2: the median pair, not 150 over some median ceiling.
    assert figure.ratio == pytest.approx(0.95)
    assert figure.details["trials_per_s"] == "150.0, 190.0, 120.0"
    assert figure.details["trial_ratios"] == "0.750, 0.950, 1.200"


def test_one_trial_is_reported_as_measured() -> None:
    only = backend(150, 200)

    assert combine([only]) == only


def test_figures_without_a_ratio_keep_none() -> None:
    trials = [Figure("queue drain (raw), 2 proc", rate) for rate in (210.0, 190.0, 200.0)]

    figure = combine(trials)

    assert (figure.per_s, figure.ratio) == (200.0, None)
    assert "trial_ratios" not in figure.details


def test_an_even_count_takes_the_lower_middle_trial_and_ratio() -> None:
    trials = [backend(4, 1), backend(1, 1), backend(3, 1), backend(2, 1)]

    assert median_trial(trials).per_s == 2
    assert combine(trials).ratio == 2


def test_combine_each_pairs_figures_by_position() -> None:
    ceiling = Figure(CEILING, 200.0)
    trials = [
        [ceiling, backend(150, 200)],
        [ceiling, backend(170, 200)],
        [ceiling, backend(160, 200)],
    ]

    combined = combine_each(trials)

    assert [(figure.name, figure.per_s) for figure in combined] == [
        (CEILING, 200.0),
        ("backend drain, 2 proc", 160),
    ]


@pytest.mark.parametrize(
    "trials",
    [
        [],
        [Figure("a", 1.0), Figure("b", 1.0)],
    ],
)
def test_combine_refuses_no_trials_or_trials_of_different_figures(trials: list[Figure]) -> None:
    with pytest.raises(ValueError):
        combine(trials)


def test_combine_each_refuses_trials_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="different numbers"):
        combine_each([[Figure("a", 1.0)], [Figure("a", 1.0), Figure("b", 1.0)]])


def test_the_default_run_takes_three_trials_and_quick_one() -> None:
    assert load_config([], env={}).trials == 3
    assert load_config(["--quick"], env={}).trials == 1
    assert load_config(["--tiny"], env={}).trials == 1
    assert load_config([], env={"BENCH_TRIALS": "5"}).trials == 5


@pytest.mark.parametrize("flag", ["--trials", "--paced-attempts"])
def test_fewer_than_one_trial_or_attempt_is_refused(flag: str) -> None:
    with pytest.raises(SystemExit):
        load_config([flag, "0"], env={})


def test_paced_runs_are_tried_three_times_by_default_and_once_when_tiny() -> None:
    assert load_config([], env={}).paced_attempts == 3
    assert load_config(["--tiny"], env={}).paced_attempts == 1
    assert load_config([], env={"BENCH_PACED_ATTEMPTS": "5"}).paced_attempts == 5


@pytest.mark.parametrize(
    ("paced_per_s", "capacity_per_s", "held"),
    [
        (400.0, 500.0, True),  # 0.8 of what the host took after it
        (450.0, 500.0, True),  # 0.9 and 0.7: the band's edges are in it
        (350.0, 500.0, True),
        (400.0, 420.0, False),  # 0.95: the host slowed down, the run was near overload
        (400.0, 700.0, False),  # 0.57: the host sped up, the run was a light load
        (400.0, 0.0, False),  # nothing answered after it
    ],
)
def test_a_paced_run_holds_only_within_a_tenth_of_its_load_factor(
    paced_per_s: float, capacity_per_s: float, held: bool
) -> None:
    assert load_held(paced_per_s, capacity_per_s, 0.8) is held


def paced(p99_ms: float, per_s: float, held: bool = True) -> Figure:
    details: dict[str, float | int | str] = {
        "p99_ms": p99_ms,
        "p50_ms": 1.0,
        "held": held,
        "attempts_p99": f"p99 {p99_ms}",
    }
    return Figure("frontend at 80% load", per_s, details=details)


def test_paced_trials_are_reported_by_their_median_p99_with_every_trial_s_p99() -> None:
    trials = [paced(160.0, 500), paced(40.0, 520), paced(70.0, 480)]

    figure = combine_latency(trials)

    assert (figure.per_s, figure.details["p99_ms"]) == (480, 70.0)
    assert figure.details["trials_p99_ms"] == "160.0, 40.0, 70.0"
    assert combine_latency([trials[0]]) == trials[0]
    # of two, the worse one; a trial that got no answer has no p99 and counts as the worst
    assert combine_latency(trials[1:]).details["p99_ms"] == 70.0
    no_answer = combine_latency([paced(float("nan"), 0), paced(40.0, 520)])
    assert math.isnan(float(no_answer.details["p99_ms"]))


def test_paced_trials_whose_host_did_not_hold_are_left_out_unless_none_held() -> None:
    trials = [paced(900.0, 500, held=False), paced(40.0, 520), paced(70.0, 480)]

    figure = combine_latency(trials)

    # the median of the two that held (the worse middle one), not of all three
    assert figure.details["p99_ms"] == 70.0
    assert figure.details["trials_held"] == 2
    assert figure.details["trials_p99_ms"] == "900.0, 40.0, 70.0"
    attempts = "p99 900.0: not held; p99 40.0: held; p99 70.0: held"
    assert figure.details["trials_attempts"] == attempts
    overloaded = [paced(300.0, 520, held=False), paced(900.0, 500, held=False)]
    assert combine_latency(overloaded).details["p99_ms"] == 900.0
    assert combine_latency(overloaded).details["trials_held"] == 0
