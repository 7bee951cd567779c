"""The gate: register only when the holdout F1 clears min_f1; promote only when not worse than production on
rows neither model trained on.

The rule is the user's: the point F1 >= min_f1 by default, or the lower bound of its 95% bootstrap interval
(``FRAUD_GATE_RULE=ci_low``) for teams that want the bar cleared with confidence. Either way the decision says
what is known: the point F1, its interval, and the bootstrap probability that F1 >= min_f1.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from trainer.champion import Champion
from trainer.evaluate import Evaluation, probability_f1_at_least

GateRule = Literal["point", "ci_low"]


class Outcome(enum.Enum):
    """What the run decided; the value is the exit code of `fraudstream train`."""

    PROMOTED = 0
    REGISTERED = 3  # registered, production left where it is
    REFUSED = 4  # below the gate: nothing registered
    CHALLENGER = 5  # registered under the challenger alias (train --as-challenger), production left where it is


@dataclass(frozen=True)
class Candidate:
    """The new model as the gate sees it: its holdout F1, the interval, the chance it clears the bar."""

    f1: float
    f1_ci_low: float
    f1_ci_high: float
    p_at_least_min: float
    min_f1: float
    rule: GateRule

    @classmethod
    def of(cls, evaluation: Evaluation, min_f1: float, rule: GateRule, *, rounds: int, seed: int) -> Candidate:
        e = evaluation
        p = probability_f1_at_least(e.tp, e.fp, e.fn, e.tn, min_f1, rounds=rounds, seed=seed)
        return cls(e.f1, e.f1_ci_low, e.f1_ci_high, p, min_f1, rule)

    @property
    def gated_value(self) -> float:
        return self.f1 if self.rule == "point" else self.f1_ci_low

    @property
    def passes(self) -> bool:
        return self.gated_value >= self.min_f1

    def describe(self) -> str:
        return (
            f"holdout F1 {self.f1:.4f} (95% CI {self.f1_ci_low:.3f} to {self.f1_ci_high:.3f}; "
            f"P(F1 >= {self.min_f1:.2f}) {self.p_at_least_min:.2f})"
        )

    def bar(self) -> str:
        what = "F1" if self.rule == "point" else "the interval's lower bound"
        return f"{what} {self.gated_value:.4f} vs min_f1 {self.min_f1:.4f}"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    candidate: Candidate
    champion: Champion | None = None

    def tags(self) -> dict[str, str]:
        c = self.candidate
        tags = {
            "gate.decision": self.outcome.name.lower(),
            "gate.reason": self.reason,
            "gate.rule": c.rule,
            "gate.min_f1": f"{c.min_f1:.4f}",
            "gate.candidate_f1": f"{c.f1:.4f}",
            "gate.candidate_f1_ci": f"{c.f1_ci_low:.4f} to {c.f1_ci_high:.4f}",
            "gate.p_f1_at_least_min": f"{c.p_at_least_min:.3f}",
        }
        if self.champion is not None:
            tags |= self.champion.tags()
        return tags

    def metrics(self) -> dict[str, float]:
        metrics = {"gate_p_f1_at_least_min": self.candidate.p_at_least_min}
        if self.champion is not None and self.champion.comparison is not None:
            metrics |= self.champion.comparison.metrics()
        return metrics


def as_challenger(candidate: Candidate, champion: Champion | None) -> Decision:
    """For a candidate that passed the gate and was asked to shadow production (``train --as-challenger``): the
    challenger alias, whatever the offline comparison says (live windows decide; the comparison is recorded for
    ``fraudstream model status``). With no version serving yet there is nothing to shadow: it is promoted."""
    passed = f"{candidate.describe()} passes the gate ({candidate.bar()})"
    if champion is None:
        return Decision(
            Outcome.PROMOTED, f"{passed} and no version serves yet (nothing to shadow): promoted", candidate
        )
    if champion.comparison is None:
        where = f"no fair offline comparison with production v{champion.version} ({champion.rows_note})"
    else:
        where = f"offline on {champion.rows_note}: {champion.comparison.summary()}"
    reason = f"{passed}; {where}: registered as challenger, scored in the shadow of production v{champion.version}"
    return Decision(Outcome.CHALLENGER, reason, candidate, champion)


def refused(candidate: Candidate) -> Decision:
    reason = f"{candidate.describe()}: {candidate.bar()} is below the gate: nothing registered"
    return Decision(Outcome.REFUSED, reason, candidate)


def promotion(candidate: Candidate, champion: Champion | None) -> Decision:
    """For a candidate that passed the gate: promote it, or keep production where it is and say why."""
    passed = f"{candidate.describe()} passes the gate ({candidate.bar()})"
    if champion is None:
        return Decision(Outcome.PROMOTED, f"{passed} and no version serves yet: promoted", candidate)
    comparison = champion.comparison
    if comparison is None:
        reason = (
            f"{passed}, but it cannot be compared fairly with production v{champion.version}: "
            f"{champion.rows_note}: registered, not promoted (promote it by hand if you trust it)"
        )
        return Decision(Outcome.REGISTERED, reason, candidate, champion)
    where = f"on {champion.rows_note}: {comparison.summary()}"
    if comparison.challenger_f1 >= comparison.production_f1:
        reason = f"{passed}; not worse than production v{champion.version} {where}: promoted"
        return Decision(Outcome.PROMOTED, reason, candidate, champion)
    reason = f"{passed} but is below production v{champion.version} {where}: registered, not promoted"
    return Decision(Outcome.REGISTERED, reason, candidate, champion)
