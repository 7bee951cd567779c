"""The model watcher: the production alias keeps its model while the alias is missing; the optional (challenger)
watcher lets it go."""

from __future__ import annotations

from dataclasses import dataclass

from fraudstream.model.serving import FraudModel
from fraudstream.model.watcher import ModelWatcher


@dataclass(frozen=True)
class Ref:
    version: str


class Registry:
    def __init__(self, version: str | None) -> None:
        self.version = version

    def serving_version(self) -> Ref | None:
        return Ref(self.version) if self.version else None

    def load(self, version: str) -> FraudModel:
        return FraudModel(name="m", version=version, threshold=0.5, engine=None)  # type: ignore[arg-type]


def test_a_missing_alias_keeps_production_but_unloads_an_optional_watchers_model() -> None:
    registry = Registry("2")
    production = ModelWatcher(registry, interval_s=0.0)
    shadow = ModelWatcher(registry, interval_s=0.0, optional=True, role="challenger")
    assert production.poll()
    assert shadow.poll()
    registry.version = None
    assert production.poll() is False
    assert production.current is not None
    assert production.current.version == "2"
    assert shadow.poll() is True
    assert shadow.current is None
    assert shadow.poll() is False
    registry.version = "3"
    assert shadow.poll() is True
    assert shadow.current is not None
    assert shadow.current.version == "3"


class Worker:
    """Stands in for an explainer in a worker process: records how it was closed."""

    def __init__(self) -> None:
        self.closed: list[bool] = []

    def close(self, *, wait: bool = True) -> None:
        self.closed.append(wait)


class RegistryWithWorkers(Registry):
    def __init__(self, version: str | None) -> None:
        super().__init__(version)
        self.workers: dict[str, Worker] = {}

    def load(self, version: str) -> FraudModel:
        self.workers[version] = Worker()
        return FraudModel(name="m", version=version, threshold=0.5, engine=None, explainer=self.workers[version])  # type: ignore[arg-type]


def test_a_replaced_model_lets_its_explainer_worker_go_once_its_last_rows_are_explained() -> None:
    registry = RegistryWithWorkers("1")
    watcher = ModelWatcher(registry, interval_s=0.0)
    assert watcher.poll()
    registry.version = "2"
    assert watcher.poll()
    assert registry.workers["1"].closed == [False]  # not waited for: its last batch may still be committing
    assert registry.workers["2"].closed == []
    watcher.close()  # the scorer stopping
    assert registry.workers["2"].closed == [False]
