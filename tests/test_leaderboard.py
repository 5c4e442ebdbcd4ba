"""The leaderboard's aggregation rules on a small synthetic results table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.leaderboard import build, relative_errors


def _table(rows):
    return pd.DataFrame(rows, columns=["task", "model", "metric", "value", "leaked"])


BASE = {"t1": 2.0, "t2": 1.0, "t3": 4.0, "t4": 1.0}


def _scores():
    rows = [(t, "seasonal_naive", "MASE", v, False) for t, v in BASE.items()]
    rows += [(t, "good", "MASE", 0.5 * v, False) for t, v in BASE.items()]  # relative 0.5 everywhere
    rows += [("t1", "flaky", "MASE", 1.0, False), ("t2", "flaky", "MASE", np.nan, False),  # t2 failed
             ("t3", "flaky", "MASE", 0.0, False), ("t4", "flaky", "MASE", 1e9, False)]  # fmt: skip
    rows += [("t1", "partial", "MASE", 0.2, False), ("t2", "partial", "MASE", 0.1, False)]  # not run on t3, t4
    rows += [(t, "leaky", "MASE", 0.01 * v, t in ("t1", "t2")) for t, v in BASE.items()]
    return _table(rows)


def test_relative_errors_clip_impute_failures_and_leaks():
    rel, failures, leaked = relative_errors(_scores(), "MASE")
    assert rel.loc["t1", "flaky"] == pytest.approx(0.5)
    assert rel.loc["t2", "flaky"] == 1.0 and failures.loc["t2", "flaky"]  # failed: the baseline's score
    assert rel.loc["t3", "flaky"] == 0.01  # a zero error is clipped from below
    assert rel.loc["t4", "flaky"] == 100.0  # a blow-up is clipped from above
    assert np.isnan(rel.loc["t3", "partial"])  # not run stays missing
    assert leaked.loc["t1", "leaky"] and rel.loc["t1", "leaky"] == 1.0 and rel.loc["t3", "leaky"] == 0.01


def test_subsets_never_enter_the_main_table():
    board = build(_scores(), "MASE", n_boot=200)
    assert "partial" not in set(board.main["model"])
    row = board.subsets.set_index("model").loc["partial"]
    assert row["tasks"] == 2 and row["of"] == 4 and row["covers"] == "t1, t2"
    assert row["gmean_rel_MASE"] == pytest.approx(0.1)


def test_skill_scores_win_rates_and_intervals():
    board = build(_scores(), "MASE", n_boot=500, seed=1)
    main = board.main.set_index("model")
    assert main.loc["seasonal_naive", "skill"] == pytest.approx(0.0)
    assert main.loc["good", "skill"] == pytest.approx(0.5)
    # flaky: 0.5, 1 (imputed), 0.01 and 100 (clipped) -> geometric mean 0.5 ** 0.25
    assert main.loc["flaky", "skill"] == pytest.approx(1 - 0.5**0.25)
    assert main.loc["flaky", "failures"] == 1 and main.loc["leaky", "leaked"] == 2
    # leaky: 1, 1 (imputed), 0.01, 0.01 -> 0.1
    assert main.loc["leaky", "skill"] == pytest.approx(0.9)
    # a constant relative error has a degenerate interval; a mixed one does not
    assert main.loc["good", "skill_lo"] == pytest.approx(0.5) and main.loc["good", "skill_hi"] == pytest.approx(0.5)
    assert main.loc["flaky", "skill_lo"] < main.loc["flaky", "skill"] < main.loc["flaky", "skill_hi"]
    wins = board.win_matrix
    assert wins.loc["good", "seasonal_naive"] == 1.0 and wins.loc["seasonal_naive", "good"] == 0.0
    assert wins.loc["flaky", "seasonal_naive"] == pytest.approx((1 + 0.5 + 1 + 0) / 4)  # tie on t2 counts half
    n = len(main) - 1
    assert main.loc["good", "win_rate"] == pytest.approx(wins.loc["good"].drop("good").sum() / n)
    assert list(board.main["skill"]) == sorted(board.main["skill"], reverse=True)


def test_a_baseline_without_scores_is_an_error():
    scores = _scores()
    scores.loc[(scores.model == "seasonal_naive") & (scores.task == "t2"), "value"] = np.nan
    with pytest.raises(ValueError, match=r"seasonal_naive.*t2"):
        relative_errors(scores, "MASE")


def test_resume_reuses_only_rows_of_the_same_configuration(tmp_path):
    from benchmarks.runner import Results, build_parser, run_config

    quick = run_config(build_parser().parse_args(["--quick"]))
    full = run_config(build_parser().parse_args([]))
    assert quick != full and quick["max_series"] == 20 and full["max_series"] is None
    path = tmp_path / "results.csv"
    first = Results(path, quick)
    first.add([dict(track="ts", task="t1", model="m", metric="MASE", value=0.5)])
    again_quick, now_full = Results(path, quick), Results(path, full)
    assert again_quick.done("ts", "t1", "m")
    assert not now_full.done("ts", "t1", "m")  # a quick row never stands in for a full-task result
    assert now_full.current().empty and len(again_quick.current()) == 1
    now_full.add([dict(track="ts", task="t1", model="m", metric="MASE", value=0.7)])
    assert list(Results(path, full).current()["value"]) == [0.7]
    # a table from before configurations were recorded: reported as it is, never resumed from
    pd.DataFrame([dict(track="ts", task="t1", model="m", metric="MASE", value=0.9)]).to_csv(tmp_path / "old.csv")
    legacy = Results(tmp_path / "old.csv", full)
    assert not legacy.done("ts", "t1", "m") and len(legacy.current()) == 1
