"""One figure from several trials of it: the median, so one slow or fast draw does not decide.

On a small host the emulator, the services and the load share two cores, and a figure drawn
once moves by a quarter from one run to the next. A figure measured with a ceiling is taken
as a pair (ceiling, then figure, each from a fresh start), and its ratio is the median of the
pairs' ratios: what drifts between pairs (a busy neighbour, a warmer cache) cancels inside
each pair instead of landing on one side of the quotient.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from tools.bench.figures import Figure


def median_trial(trials: Sequence[Figure]) -> Figure:
    """The trial with the median rate (the lower middle one of an even count)."""
    if not trials:
        raise ValueError("no trials to combine")
    ordered = sorted(trials, key=lambda figure: figure.per_s)
    return ordered[(len(ordered) - 1) // 2]


def combine(trials: Sequence[Figure]) -> Figure:
    """One figure from trials of the same measurement.

    Its rate is the median trial's and its details that trial's, with every trial's rate (and
    ratio, where they have one) added; its ratio is the median of the trials' ratios (the lower
    middle one of an even count, so always a ratio one pair measured).
    """
    middle = median_trial(trials)
    names = {figure.name for figure in trials}
    if len(names) != 1:
        raise ValueError(f"trials of different figures: {sorted(names)}")
    details = dict(middle.details)
    ratio = middle.ratio
    if len(trials) > 1:
        details["trials_per_s"] = ", ".join(f"{figure.per_s:.1f}" for figure in trials)
        ratios = [figure.ratio for figure in trials if figure.ratio is not None]
        if ratios:
            ratio = statistics.median_low(ratios)
            details["trial_ratios"] = ", ".join(f"{value:.3f}" for value in ratios)
    return Figure(middle.name, middle.per_s, middle.ceiling, ratio, details)


def combine_latency(trials: Sequence[Figure]) -> Figure:
    """One paced figure from its trials: the trial with the median p99 (the higher middle one).

    A paced figure's point is its tail latency, which one draw on a shared host moves by half;
    every trial's p99 is kept in `trials_p99_ms`, and each trial's attempts in
    `trials_attempts`. Only the trials whose host `held` its capacity (`figures.load_held`) are
    ranked, unless none did: a trial paced past what the host then took measures overload, not
    the service's tail. `trials_held` counts them. Of an even count (two trials held) the worse
    middle one is taken, so leaving a trial out never flatters the tail.
    """
    if not trials:
        raise ValueError("no trials to combine")
    held = [figure for figure in trials if figure.details.get("held", True)]
    # A trial with no answers has no p99 (NaN): it sorts last, as the worst.
    ordered = sorted(held or trials, key=lambda figure: _p99_or_worst(figure))
    middle = ordered[len(ordered) // 2]
    details = dict(middle.details)
    if len(trials) > 1:
        details["trials_p99_ms"] = ", ".join(str(figure.details["p99_ms"]) for figure in trials)
        details["trials_held"] = len(held)
        if any("attempts_p99" in figure.details for figure in trials):
            details["trials_attempts"] = "; ".join(_attempts(figure) for figure in trials)
    return Figure(middle.name, middle.per_s, middle.ceiling, middle.ratio, details)


def _attempts(figure: Figure) -> str:
    """One trial's attempts and whether its last one held: "p99 412 ms at 0.97, ...: held"."""
    held = "held" if figure.details.get("held", True) else "not held"
    return f"{figure.details.get('attempts_p99', '')}: {held}"


def _p99_or_worst(figure: Figure) -> float:
    p99 = float(figure.details["p99_ms"])
    return math.inf if math.isnan(p99) else p99


def combine_each(trials: Sequence[Sequence[Figure]]) -> list[Figure]:
    """`combine` position by position: trials[i] is the i-th trial's list of figures."""
    if not trials:
        return []
    counts = {len(figures) for figures in trials}
    if len(counts) != 1:
        raise ValueError(f"trials measured different numbers of figures: {sorted(counts)}")
    return [combine(list(same)) for same in zip(*trials, strict=True)]
