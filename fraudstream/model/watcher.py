"""Hot reload: follow the registry alias and swap the serving model between units of work."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from fraudstream.exceptions import FraudstreamError
from fraudstream.model.serving import FraudModel

log = logging.getLogger(__name__)


class VersionSource(Protocol):
    """What the watcher needs from a registry (ModelRegistry satisfies it; tests pass fakes)."""

    def serving_version(self) -> object | None: ...

    def load(self, version: str) -> FraudModel: ...


class ModelWatcher:
    """Holds the current serving model and checks the alias at most every ``interval_s`` seconds.

    ``poll()`` is cheap when the interval has not elapsed, so a loop may call it before every batch.
    A version that fails to load is logged and the current model keeps serving.

    ``optional`` (the challenger's watcher): an alias that disappears unloads the current model (``poll()``
    returns True), instead of the current one serving on while waiting for a version.
    """

    def __init__(
        self,
        registry: VersionSource,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        optional: bool = False,
        role: str = "production",
    ) -> None:
        self._registry = registry
        self._interval = interval_s
        self._clock = clock
        self._optional = optional
        self._role = role
        self._next_check = float("-inf")
        self._missing_logged = False
        self.current: FraudModel | None = None

    def close(self) -> None:
        """Release what the current model holds outside this process (its explainer's worker); it stays current."""
        if self.current is not None:
            self.current.close()

    def poll(self, *, force: bool = False) -> bool:
        """Check the alias if due; return True when a different version was loaded."""
        now = self._clock()
        if not force and now < self._next_check:
            return False
        self._next_check = now + self._interval
        try:
            ref = self._registry.serving_version()
        except Exception as exc:  # the registry store may be briefly unreachable; keep serving
            log.warning("cannot reach the model registry: %s", exc)
            return False
        if ref is None and self._optional:
            if self.current is None:
                return False
            log.info("the %s alias is gone: %s no longer scored", self._role, self.current.label)
            self.current.close()
            self.current = None
            return True
        if ref is None:
            if not self._missing_logged:
                log.warning("no production model yet: waiting for `fraudstream train` to promote one")
                self._missing_logged = True
            return False
        version = str(ref.version)  # type: ignore[attr-defined]
        if self.current is not None and self.current.version == version:
            return False
        try:
            model = self._registry.load(version)
        except FraudstreamError as exc:
            log.error("model version %s cannot be loaded, keeping the current one: %s", version, exc)
            return False
        previous = self.current
        self.current = model
        if previous is not None:
            previous.close()  # its last batch may still commit: an explainer's worker finishes what it was sent
        self._missing_logged = False
        log.info(
            "serving model switched" if self._role == "production" else f"{self._role} model switched",
            extra={"from_version": previous.version if previous else None, "to_version": version},
        )
        return True
