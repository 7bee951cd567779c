"""Access to the MLflow model registry: which version serves, and loading it for scoring.

The serving version is the one holding the alias (``production`` by default), loaded as
``models:/<name>@<alias>``. Registry aliases replace the deprecated stages.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from fraudstream.exceptions import ModelLoadError, ModelNotFoundError
from fraudstream.model.explain import ExplainPolicy
from fraudstream.model.serving import FraudModel, open_model_dir
from fraudstream.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionRef:
    """A registered model version as the registry reports it."""

    name: str
    version: str
    run_id: str | None


def quiet_mlflow_logs() -> None:
    """MLflow sets its own logger to INFO when imported; keep it to warnings unless we are debugging."""
    logging.getLogger("mlflow").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))


class ModelRegistry:
    """The registered model named in the settings, and the version its alias points to.

    It talks to the store through its own client and never sets MLflow's process-wide URIs (which MLflow also
    exports to the environment), so several registries and a trainer can share a process.
    """

    def __init__(self, settings: Settings, alias: str | None = None, *, explain_process: bool = False) -> None:
        """``alias``: the alias to follow (default: FRAUD_MODEL_ALIAS; the scorer's shadow uses the challenger's);
        ``explain_process``: reason codes in a worker process of their own (the scorer's choice)."""
        from mlflow import MlflowClient

        quiet_mlflow_logs()
        self.tracking_uri = settings.tracking_uri
        self.name = settings.model_name
        self.alias = alias or settings.model_alias
        policy = ExplainPolicy.from_settings(settings) if settings.explain_enabled else None
        self.explain_policy = replace(policy, process=explain_process) if policy else None
        self.client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)

    def serving_version(self) -> VersionRef | None:
        """The version holding the alias, or None when there is no such model or alias yet."""
        return self.version_with_alias(self.alias)

    def version_with_alias(self, alias: str) -> VersionRef | None:
        """The version holding ``alias`` (e.g. the challenger's), or None when there is no such model or alias."""
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.get_model_version_by_alias(self.name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise
        return VersionRef(name=found.name, version=str(found.version), run_id=found.run_id)

    def load(self, version: str) -> FraudModel:
        """Download one version's model directory and build the scoring model from it (its MLmodel metadata,
        ONNX file and reference profile): the one loader of the scorer, the API and the trainer's gate."""
        import mlflow

        uri = f"models:/{self.name}/{version}"
        with tempfile.TemporaryDirectory(prefix="fraudstream-model-") as tmp:
            try:
                location = self.client.get_model_version_download_uri(self.name, version)
                local = Path(
                    mlflow.artifacts.download_artifacts(
                        artifact_uri=location, dst_path=tmp, tracking_uri=self.tracking_uri
                    )
                )
                run_id = self.client.get_model_version(self.name, version).run_id
            except Exception as exc:  # MLflow raises many kinds here (store, file system)
                raise ModelLoadError(f"cannot download {uri}: {exc}") from exc
            model = open_model_dir(
                local, name=self.name, version=str(version), run_id=run_id, explain_policy=self.explain_policy
            )
        log.info("loaded model", extra={"model": self.name, "version": version, "threshold": model.threshold})
        return model

    def load_serving(self) -> FraudModel:
        """The model behind the alias; ModelNotFoundError says to run the trainer when there is none."""
        ref = self.serving_version()
        if ref is None:
            raise ModelNotFoundError(
                f"no version of model {self.name!r} has the alias {self.alias!r} yet: run `fraudstream train`"
            )
        return self.load(ref.version)
