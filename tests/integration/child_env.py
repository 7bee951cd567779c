"""The environment of a `fraudstream` process a test starts.

Nothing is inherited from FRAUD_* or MLFLOW_* variables (the developer's shell, or the MLFLOW_TRACKING_URI that
MLflow exports whenever this test process trains); the process gets exactly the settings the test names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from fraudstream.settings import Settings, env_name


def fields_of(settings: Settings, names: Iterable[str]) -> dict[str, Any]:
    """The named settings fields and their values."""
    return {name: getattr(settings, name) for name in names}


def child_env(fields: Mapping[str, Any] | None = None, **extra: str) -> dict[str, str]:
    """This environment without FRAUD_*/MLFLOW_*, then FRAUD_<FIELD> for each field set (None: left unset), then
    ``extra`` variables as given."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("FRAUD_", "MLFLOW_"))}
    env.update({env_name(field): str(value) for field, value in (fields or {}).items() if value is not None})
    env.update(extra)
    return env
