"""How the benchmark turns trials of a figure into the one it reports."""

from __future__ import annotations

import pytest

from tools.bench.config import load_config
from tools.bench.figures import Figure
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


def test_fewer_than_one_trial_is_refused() -> None:
    with pytest.raises(SystemExit):
        load_config(["--trials", "0"], env={})


def paced(p99_ms: float, per_s: float) -> Figure:
    return Figure("frontend at 80% load", per_s, details={"p99_ms": p99_ms, "p50_ms": 1.0})


def test_paced_trials_are_reported_by_their_median_p99_with_every_trial_s_p99() -> None:
    trials = [paced(160.0, 500), paced(40.0, 520), paced(70.0, 480)]

    figure = combine_latency(trials)

    assert (figure.per_s, figure.details["p99_ms"]) == (480, 70.0)
    assert figure.details["trials_p99_ms"] == "160.0, 40.0, 70.0"
    assert combine_latency([trials[0]]) == trials[0]
    # a trial that got no answer has no p99: it counts as the worst, not as any place
    assert combine_latency([paced(float("nan"), 0), paced(40.0, 520)]).details["p99_ms"] == 40.0
