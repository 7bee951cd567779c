"""A documented perturbation of the replayed features, so a user can watch the scorer detect drift.

The spec is a comma-separated list of terms, each one feature and one operation on its value::

    Amount*3          multiply Amount by 3
    V1+2              add 2 to V1 (the PCA components have a standard deviation of about 1 to 2)
    V3-1.5            subtract 1.5 from V3

``--drift default`` stands for :data:`DEFAULT_DRIFT` (``Amount*3,V13+2,V15+2``): on the ULB data each of these moves
the feature's PSI far above 0.25 and leaves the other features untouched. They are features the forest leans on
little, so the monitor reports ``drift`` while the live F1 holds; shifting one it leans on (e.g. ``V14-3``) also
moves the model's decisions, which the live precision and recall show (``degraded`` once F1 falls below
FRAUD_MIN_F1). ``Time`` and ``Amount`` stay
non-negative (a result below 0 becomes 0). The label travels unchanged: the model sees drifted rows, the live
precision and recall say what it makes of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from fraudstream.schemas import FEATURES
from producer.exceptions import ReplayError

DEFAULT_DRIFT = "Amount*3,V13+2,V15+2"
_TERM = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*)\s*([*+-])\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$")
_NON_NEGATIVE = ("Time", "Amount")


@dataclass(frozen=True)
class Drift:
    """Per feature (FEATURES order) a factor and an offset: ``value * scale + shift``."""

    spec: str
    scale: np.ndarray
    shift: np.ndarray

    @classmethod
    def parse(cls, spec: str) -> Drift:
        """A Drift from its spec (see the module docstring); ReplayError naming the term that is wrong."""
        text = DEFAULT_DRIFT if spec.strip().lower() == "default" else spec
        scale, shift = np.ones(len(FEATURES)), np.zeros(len(FEATURES))
        terms = [term for term in text.split(",") if term.strip()]
        if not terms:
            raise ReplayError("--drift needs at least one term such as Amount*3 or V1+2")
        for term in terms:
            found = _TERM.match(term)
            if found is None:
                raise ReplayError(
                    f"--drift term {term.strip()!r} is not FEATURE*FACTOR, FEATURE+OFFSET or FEATURE-OFFSET"
                )
            name, op, number = found.group(1), found.group(2), float(found.group(3))
            if name not in FEATURES:
                raise ReplayError(f"--drift term {term.strip()!r}: unknown feature {name!r} (Time, V1..V28, Amount)")
            index = FEATURES.index(name)
            if op == "*":
                scale[index] *= number
                shift[index] *= number
            else:
                shift[index] += number if op == "+" else -number
        return cls(spec=text, scale=scale, shift=shift)

    @property
    def features(self) -> list[str]:
        """The features it changes."""
        return [name for i, name in enumerate(FEATURES) if self.scale[i] != 1.0 or self.shift[i] != 0.0]

    def apply(self, matrix: np.ndarray) -> np.ndarray:
        """The (n, 30) features in FEATURES order, perturbed (a new array)."""
        out = np.asarray(matrix, dtype=np.float64) * self.scale + self.shift
        for name in _NON_NEGATIVE:
            index = FEATURES.index(name)
            np.maximum(out[:, index], 0.0, out=out[:, index])
        return out
