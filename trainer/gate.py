"""The gate: register only at F1 >= min_f1; promote only when not worse than production on the same rows."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.Enum):
    """What the run decided; the value is the exit code of `fraudstream train`."""

    PROMOTED = 0
    REGISTERED = 3  # registered, production left where it is
    REFUSED = 4  # below the gate: nothing registered


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    candidate_f1: float
    min_f1: float
    production_version: str | None = None
    production_f1: float | None = None

    def tags(self) -> dict[str, str]:
        tags = {
            "gate.decision": self.outcome.name.lower(),
            "gate.reason": self.reason,
            "gate.min_f1": f"{self.min_f1:.4f}",
            "gate.candidate_f1": f"{self.candidate_f1:.4f}",
        }
        if self.production_version is not None and self.production_f1 is not None:
            tags["gate.production_version"] = self.production_version
            tags["gate.production_f1"] = f"{self.production_f1:.4f}"
        return tags


def passes_gate(candidate_f1: float, min_f1: float) -> bool:
    return candidate_f1 >= min_f1


def refused(candidate_f1: float, min_f1: float) -> Decision:
    return Decision(
        Outcome.REFUSED,
        f"test F1 {candidate_f1:.4f} is below the gate min_f1 {min_f1:.4f}: nothing registered",
        candidate_f1,
        min_f1,
    )


def promotion(
    candidate_f1: float, min_f1: float, production_version: str | None, production_f1: float | None
) -> Decision:
    """For a candidate that passed the gate: promote it, or keep production where it is and say why."""
    if production_version is None or production_f1 is None:
        reason = f"test F1 {candidate_f1:.4f} >= min_f1 {min_f1:.4f} and no version serves yet: promoted"
        return Decision(Outcome.PROMOTED, reason, candidate_f1, min_f1)
    if candidate_f1 >= production_f1:
        reason = (
            f"test F1 {candidate_f1:.4f} >= production v{production_version}'s {production_f1:.4f} "
            "on the same test split: promoted"
        )
        return Decision(Outcome.PROMOTED, reason, candidate_f1, min_f1, production_version, production_f1)
    reason = (
        f"test F1 {candidate_f1:.4f} passes the gate ({min_f1:.4f}) but is below production "
        f"v{production_version}'s {production_f1:.4f} on the same test split: registered, not promoted"
    )
    return Decision(Outcome.REGISTERED, reason, candidate_f1, min_f1, production_version, production_f1)
