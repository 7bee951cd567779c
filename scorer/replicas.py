"""The environment of each scorer worker that ``fraudstream score --workers N`` runs (``fraudstream.workers``).

Each worker is a replica of its own in the consumer group: it gets its share of the partitions, runs its own
transactions, and is fenced and restarted on its own. What must differ between replicas differs here:

* the transactional.id (also the static ``group.instance.id``): ``<FRAUD_SCORER_TRANSACTIONAL_ID>-<i>`` when one
  is set, so a restarted worker fences its own predecessor and gets its own partitions back at once; unset, each
  worker derives one from its process id as a lone scorer does;
* the metrics and readiness port: ``FRAUD_SCORER_METRICS_PORT + i`` (0 stays 0: off).

Everything else is the supervisor's own settings, written out as the variables the worker reads, so a command-line
option reaches every worker; ``FRAUD_SCORER_WORKERS=1`` makes each worker score rather than supervise.
"""

from __future__ import annotations

from collections.abc import Mapping

from fraudstream.settings import Settings, env_name

PASSED_ON = ("scorer_group_id", "scorer_batch_size", "scorer_batch_timeout_s")
"""Settings a command-line option of ``fraudstream score`` may have changed: handed to each worker."""


def worker_environment(settings: Settings, index: int, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the settings of worker ``index`` of ``settings.scorer_workers``."""
    env = dict(environ)
    for name in PASSED_ON:
        env[env_name(name)] = str(getattr(settings, name))
    env[env_name("scorer_workers")] = "1"
    port = settings.scorer_metrics_port
    env[env_name("scorer_metrics_port")] = str(port + index if port else 0)
    if settings.scorer_transactional_id:
        env[env_name("scorer_transactional_id")] = f"{settings.scorer_transactional_id}-{index}"
    else:
        env.pop(env_name("scorer_transactional_id"), None)
    return env
