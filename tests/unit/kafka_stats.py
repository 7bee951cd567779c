"""librdkafka statistics (the JSON of ``stats_cb``) for unit tests: just the fields ConsumerHealth reads."""

from __future__ import annotations

import json


def stats_json(
    topic: str,
    partitions: dict[int, tuple[int, int]],
    *,
    up: bool = True,
    committed: dict[int, int] | None = None,
) -> str:
    """Statistics of a consumer holding ``partitions`` {partition: (app_offset, ls_offset)} of ``topic``, led by
    broker 1 (``up`` or not); -1001 marks an offset not known yet."""
    parts = {
        str(number): {
            "partition": number,
            "leader": 1,
            "desired": True,
            "app_offset": app,
            "committed_offset": (committed or {}).get(number, -1001),
            "lo_offset": 0,
            "hi_offset": end,
            "ls_offset": end,
        }
        for number, (app, end) in partitions.items()
    }
    parts["-1"] = {"partition": -1, "leader": -1, "desired": False}
    brokers = {"127.0.0.1:9092/1": {"nodeid": 1, "state": "UP" if up else "DOWN"}}
    return json.dumps({"brokers": brokers, "topics": {topic: {"partitions": parts}}})
