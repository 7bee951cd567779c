"""Verdicts as labels: the latest verdict of a transaction counts, and it relabels exactly the row it names."""

from __future__ import annotations

import pandas as pd

from fraudstream.feedback import latest_verdicts, relabel

from .verdicts import verdict as _verdict


def test_the_latest_verdict_of_a_transaction_counts_whatever_the_order_read() -> None:
    records = [_verdict(3, "f.csv:1", "fraud"), _verdict(1, "f.csv:1", "legitimate"), _verdict(2, "f.csv:2", "fraud")]
    latest = latest_verdicts(records)
    assert {tid: v.verdict for tid, v in latest.items()} == {"f.csv:1": "fraud", "f.csv:2": "fraud"}


def test_verdicts_relabel_exactly_the_rows_they_name_in_this_file() -> None:
    frame = pd.DataFrame({"Amount": [1.0, 2.0, 3.0, 4.0, 5.0], "Class": [0, 0, 1, 1, 0]})
    verdicts = latest_verdicts(
        [
            _verdict(1, "creditcard.csv:0", "fraud"),  # 0 -> 1
            _verdict(2, "creditcard.csv:2", "legitimate"),  # 1 -> 0
            _verdict(3, "creditcard.csv:3", "fraud"),  # already 1: named, unchanged
            _verdict(4, "other.csv:4", "fraud"),  # another file
            _verdict(5, "creditcard.csv:99", "fraud"),  # beyond the file
        ]
    )

    relabelled, report = relabel(frame, "creditcard.csv", verdicts)

    assert relabelled["Class"].tolist() == [1, 0, 0, 1, 0]
    assert frame["Class"].tolist() == [0, 0, 1, 1, 0]  # the caller's frame is left alone
    assert report.changed_rows == [0, 2]
    assert (report.verdicts, report.matched, report.other_files, report.out_of_range) == (5, 3, 1, 1)
    assert "2 labels changed" in report.describe()
