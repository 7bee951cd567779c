"""The lifecycle after the gate: --as-challenger's decision, the live comparison over shared windows, the readers'
fold of monitoring records (the CLI's table, the demo's line)."""

from __future__ import annotations

from datetime import timedelta

from monitoring_records import T0, monitoring_record
from rich.console import Console

from fraudstream.cli.demo.report import monitoring_lines
from fraudstream.cli.monitor import monitoring_table
from fraudstream.kafka.monitoring_feed import LatestWindows
from fraudstream.monitoring import Confusion
from trainer import gate
from trainer.champion import Champion
from trainer.lifecycle import evidence, live_comparison, status

from .test_metrics import _candidate, _comparison


def test_as_challenger_registers_under_the_alias_whatever_the_offline_comparison_and_promotes_when_none_serves() -> (
    None
):
    note = "the 1,000 holdout rows neither trained on"
    worse = gate.as_challenger(_candidate(0.92, 0.91, 0.95), Champion("1", _comparison(0.90, 0.95), note))
    assert worse.outcome is gate.Outcome.CHALLENGER
    assert "registered as challenger" in worse.reason
    assert "challenger F1 0.9000 vs production 0.9500" in worse.reason
    assert worse.tags()["gate.decision"] == "challenger"
    unfair = gate.as_challenger(_candidate(0.95, 0.92, 0.97), Champion("1", None, "another file"))
    assert unfair.outcome is gate.Outcome.CHALLENGER
    assert "no fair offline comparison" in unfair.reason
    first = gate.as_challenger(_candidate(0.95, 0.92, 0.97), None)
    assert first.outcome is gate.Outcome.PROMOTED


def test_live_comparison_pools_both_versions_over_the_windows_both_were_measured_on() -> None:
    champion, challenger = Confusion(tp=8, fp=2, fn=2, tn=988), Confusion(tp=9, fp=1, fn=1, tn=989)
    records = [
        *(monitoring_record(i, version="1", confusion=champion) for i in range(3)),
        *(monitoring_record(i, version="2", role="challenger", confusion=challenger) for i in (1, 2, 3)),
        monitoring_record(1, version="2", model_name="another-model"),
    ]
    live = live_comparison(records, "fraud-unit", "1", "2")
    assert live.shared_windows == 2  # windows 1 and 2
    assert live.production.pooled == champion + champion
    assert live.challenger.pooled == challenger + challenger
    assert live.production.scored == 2000
    assert live.challenger.latest == records[5]  # its newest, even outside the shared windows


def test_status_without_versions_and_the_evidence_line() -> None:
    class NoVersions:
        def serving_version(self) -> None:
            return None

        def version_with_alias(self, alias: str) -> None:
            return None

    from fraudstream.settings import load_settings

    current = status(load_settings(kafka_bootstrap="127.0.0.1:1"), NoVersions(), [])  # type: ignore[arg-type]
    assert (current.production, current.challenger, current.live) == (None, None, None)
    assert current.same_rows_note == "no challenger"
    assert evidence(current) == "no live or offline comparison recorded"


def test_latest_windows_keep_the_newest_per_version_and_the_table_and_demo_line_show_them() -> None:
    records = [monitoring_record(i) for i in (1, 0, 2)] + [
        monitoring_record(2, version="2", role="challenger", drifted={"Amount": 0.7})
    ]
    latest = LatestWindows()
    for record in records:
        latest.add(record)
    one = latest.versions[("fraud-unit", "1")]
    assert one.latest == records[2]
    assert (one.windows, one.scored) == (3, 3000)
    assert one.confusion == Confusion(tp=24, fp=6, fn=3, tn=2967)

    console = Console(width=250, record=True)
    console.print(monitoring_table(latest, "fraud-monitoring"))
    text = console.export_text()
    assert "fraud-unit v1" in text
    assert "drift Amount PSI 0.700 > 0.25" in text
    assert "0.700 (Amount)" in text

    lines = monitoring_lines(records, "fraud-unit", since=T0 + timedelta(minutes=1))
    assert [(line.model_version, line.windows, line.status) for line in lines] == [("1", 2, "ok"), ("2", 1, "drift")]
    assert lines[0].f1 == (Confusion(tp=16, fp=4, fn=2, tn=1978)).f1
    assert lines[1].worst_feature == "Amount"
    assert monitoring_lines(records, "other-model", since=T0) == []
