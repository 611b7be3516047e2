"""B2's yardsticks: pairwise precision, recall and F1 of a clustering against the truth, and the count of
candidate pairs Splink's blocking rules would compare (what says whether Splink can run at a size)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from b2_linkage import pair_scores, splink_candidate_pairs  # noqa: E402


def test_scores_count_pairs_not_records() -> None:
    truth = ["a", "a", "a", "b"]
    assert pair_scores([1, 1, 2, 3], truth) == {"precision": 1.0, "recall": 0.33333, "f1": 0.5}
    # one cluster of everything: the 3 true pairs found among 6 predicted
    assert pair_scores([1, 1, 1, 1], truth) == {"precision": 0.5, "recall": 1.0, "f1": 0.66667}
    assert pair_scores([1, 1, 1, 2], truth) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_singletons_everywhere_have_nothing_to_find_or_miss() -> None:
    assert pair_scores([1, 2, 3], ["a", "b", "c"]) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_candidate_pairs_per_blocking_rule_leave_out_missing_values() -> None:
    def record(id_number, birth, pinyin, village):  # type: ignore[no-untyped-def]
        return {"id_number": id_number, "birth_date": birth, "name_pinyin": pinyin, "hukou_village": village}

    records = [
        record("X1", "2016-01-01", "wang wei", "370406001201"),
        record("X1", "2016-01-01", "wang wei", "370406001201"),
        record(None, "2016-01-01", "wang wei", "370406001202"),
        record(None, None, "wang wei", "370406001201"),
        record(None, "2016-01-02", None, "370406001201"),
    ]
    assert splink_candidate_pairs(records) == {
        "id_number": 1,
        "birth_date+hukou_village": 1,
        "name_pinyin+birth_date": 3,
        "name_pinyin+hukou_village": 3,
    }
