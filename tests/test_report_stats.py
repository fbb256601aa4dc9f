"""The leaderboard's statistics (issue 15): speaker-clustered intervals from the speakers the
results record (item bootstrap for results without them, said in the footer), paired significance
marks (tied_with_best in the JSON, a mark in the markdown), capacity on every seed with the change
from the same seeds, and the table fixes (mismatched only for language-trained models, Params as
encoder / whole model, Table IX subset counts, seeds per column, probe heads)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from harness.report import render_markdown, table_json
from harness.report.model import TIED_MARK
from harness.stats import clustered_ci, relative_change_ci, sample
from tests.test_leaderboard import INFERENCE, make_result, markdown_line, tables_by_name

SPEAKERS = [f"en_spk{s:02d}" for s in range(20, 24)]  # 4 test speakers, 14 utterances each


def spoken(right_by_speaker: list[int], *, n_per: int = 14, classes: int = 2, seed: int = 0) -> dict[str, Any]:
    """Predictions of 4 x ``n_per`` utterances: ``right_by_speaker[s]`` of speaker s's are right."""
    rng = np.random.default_rng(seed)
    ids, speakers, yt, yp = [], [], [], []
    for s, right in zip(SPEAKERS, right_by_speaker, strict=True):
        for j in range(n_per):
            y = int(rng.integers(classes))
            ids.append(f"{s}_{j:04d}")
            speakers.append(s)
            yt.append(y)
            yp.append(y if j < right else (y + 1) % classes)
    return {"ids": ids, "y_true": yt, "y_pred": yp, "speakers": speakers}


def test_clustered_interval_from_recorded_speakers_and_item_fallback() -> None:
    # speakers that differ (14, 14, 7, 0 right of 14): the clustered interval is far wider
    preds = spoken([14, 14, 7, 0])
    with_speakers = tables_by_name([make_result("hubert_base", "gender", "en", preds=preds)])["table1_gender"]
    old = {k: v for k, v in preds.items() if k != "speakers"}
    without = tables_by_name([make_result("hubert_base", "gender", "en", preds=old)])["table1_gender"]
    c, i = (t.rows[0].cells["gender.en.f1_micro"] for t in (with_speakers, without))
    assert c.value == i.value == pytest.approx(62.5)
    assert c.clustered is True and i.clustered is False
    assert (c.high - c.low) > 1.8 * (i.high - i.low)
    expected = clustered_ci([sample(preds["y_true"], preds["y_pred"], clusters=preds["speakers"], units=preds["ids"])],
                            metric="f1_micro", n_boot=200)
    assert (c.low, c.high) == (pytest.approx(expected.low), pytest.approx(expected.high))
    md_c, md_i = render_markdown(with_speakers), render_markdown(without)
    assert "speaker-clustered" in md_c and "Item bootstrap" not in md_c
    assert "Item bootstrap for every interval" in md_i
    assert json.loads(table_json(with_speakers))["rows"][0]["cells"]["gender.en.f1_micro"]["clustered"] is True


def test_word_items_are_clustered_by_utterance_and_speaker() -> None:
    preds = spoken([14, 14, 7, 0])
    words = {"ids": [f"{i}#{k}" for i in preds["ids"] for k in range(3)],
             "y_true": [y for y in preds["y_true"] for _ in range(3)],
             "y_pred": [y for y in preds["y_pred"] for _ in range(3)],
             "speakers": [s for s in preds["speakers"] for _ in range(3)]}
    utt = tables_by_name([make_result("hubert_base", "gender", "en", preds=preds)])["table1_gender"]
    word = tables_by_name([make_result("hubert_base", "gender", "en", preds=words)])["table1_gender"]
    a, b = (t.rows[0].cells["gender.en.f1_micro"] for t in (utt, word))
    # three identical words per utterance, resampled with it: the same interval as the utterances
    assert (a.low, a.high) == (pytest.approx(b.low), pytest.approx(b.high))


def group_of_three() -> dict[str, Any]:
    results = []
    for up, right in (("wav2vec2_base", [14, 13, 13, 12]), ("hubert_base", [14, 13, 12, 12]),
                      ("wav2vec2_large", [3, 2, 4, 3])):
        for seed in (0, 1):
            results.append(make_result(up, "gender", "en", seed=seed, preds=spoken(right, seed=seed)))
    return tables_by_name(results)


def test_paired_significance_marks_ties_with_the_best() -> None:
    table = group_of_three()["table1_gender"]
    cells = {r.key: r.cells["gender.en.f1_micro"] for r in table.rows}
    best, near, far = cells["wav2vec2_base"], cells["hubert_base"], cells["wav2vec2_large"]
    assert best.best and best.tied_with_best is True
    assert near.tied_with_best is True and not near.best  # one item apart: not significantly worse
    # groups: wav2vec2_large is in the "large" group alone, so it is not tested
    assert far.tied_with_best is None
    data = json.loads(table_json(table))
    assert data["significance"].startswith("not significantly worse than the best of its group")
    assert "paired bootstrap" in data["significance"] and "speaker-clustered" in data["significance"]
    got = {r["upstream"]: r["cells"]["gender.en.f1_micro"]["tied_with_best"] for r in data["rows"]}
    assert got == {"wav2vec2_base": True, "hubert_base": True, "wav2vec2_large": None}
    md = render_markdown(table)
    assert TIED_MARK in markdown_line(md, "HuBERT-B") and TIED_MARK not in markdown_line(md, "Wav2vec2-B")
    assert f"{TIED_MARK} not significantly worse" in md


def test_a_clearly_worse_model_is_not_tied() -> None:
    results = [make_result(up, "gender", "en", seed=seed, preds=spoken(right, seed=seed))
               for up, right in (("wav2vec2_base", [14, 14, 14, 14]), ("hubert_base", [3, 4, 2, 3]))
               for seed in (0, 1)]
    table = tables_by_name(results)["table1_gender"]
    cells = {r.key: r.cells["gender.en.f1_micro"] for r in table.rows}
    assert cells["wav2vec2_base"].tied_with_best is True and cells["hubert_base"].tied_with_best is False
    assert TIED_MARK not in markdown_line(render_markdown(table), "HuBERT-B")


def test_capacity_on_every_seed_change_from_the_same_seeds() -> None:
    results = []
    for seed, (full, cap) in enumerate((([14, 14, 14, 14], [14, 14, 7, 7]), ([14, 14, 14, 0], [14, 14, 0, 0]))):
        capacity = {"metrics": {"f1_micro": 100.0 * sum(cap) / 56}, "k": 76, "predictions": spoken(cap, seed=seed),
                    "relative_change_pct": {"f1_micro": 999.0}}
        results.append(make_result("hubert_base", "gender", "en", seed=seed, preds=spoken(full, seed=seed),
                                   analyses={"capacity": capacity}))
    cell = tables_by_name(results)["table8_capacity"].rows[0].cells["gender.en.capacity"]
    full_mean, cap_mean = (100.0 + 75.0) / 2, (75.0 + 50.0) / 2
    assert cell.seeds == 2 and cell.value == pytest.approx(cap_mean)
    assert cell.delta == pytest.approx(100 * (cap_mean - full_mean) / full_mean)  # not a seed's reported 999
    assert cell.delta_low is not None and cell.delta_low < cell.delta < cell.delta_high <= 0.0
    line = markdown_line(render_markdown(tables_by_name(results)["table8_capacity"]), "HuBERT-B")
    assert f"({cell.delta:+.1f}% [{cell.delta_low:+.1f}, {cell.delta_high:+.1f}])" in line


def test_capacity_repeats_enter_the_mean_the_interval_and_the_change() -> None:
    """Two seeds, each with three retrainings of the 10% probe (capacity_repeats 3): the cell is the
    mean over the six, its interval is the clustered interval of the six samples (one drawn per
    replicate), and the change pairs each retraining with its own seed's full probe."""
    plans = {0: ([14, 14, 14, 14], ([14, 14, 7, 7], [14, 14, 14, 7], [7, 7, 7, 7])),
             1: ([14, 14, 14, 0], ([14, 14, 0, 0], [14, 0, 0, 0], [14, 14, 14, 0]))}
    results, caps, fulls = [], [], []
    for seed, (full, reps) in plans.items():
        repeats = [{"seed": seed + 1000 * r, "metrics": {"f1_micro": 100.0 * sum(c) / 56},
                    "predictions": spoken(c, seed=seed)} for r, c in enumerate(reps)]
        capacity = {"metrics": {"f1_micro": float(np.mean([r["metrics"]["f1_micro"] for r in repeats]))}, "k": 76,
                    "predictions": repeats[0]["predictions"], "seeds": [r["seed"] for r in repeats],
                    "repeats": repeats}
        results.append(make_result("hubert_base", "gender", "en", seed=seed, preds=spoken(full, seed=seed),
                                   analyses={"capacity": capacity}))
        caps += [sample(r["predictions"]["y_true"], r["predictions"]["y_pred"], clusters=r["predictions"]["speakers"],
                        units=r["predictions"]["ids"]) for r in repeats]
        f = spoken(full, seed=seed)
        fulls += [sample(f["y_true"], f["y_pred"], clusters=f["speakers"], units=f["ids"])] * 3
    table = tables_by_name(results)["table8_capacity"]
    cell = table.rows[0].cells["gender.en.capacity"]
    cap_mean = np.mean([100.0 * sum(c) / 56 for _, reps in plans.values() for c in reps])
    full_mean = (100.0 + 75.0) / 2
    assert cell.seeds == 2 and cell.value == pytest.approx(cap_mean)
    expected = clustered_ci(caps, metric="f1_micro", n_boot=200)
    assert (cell.low, cell.high) == (pytest.approx(expected.low), pytest.approx(expected.high))
    assert cell.delta == pytest.approx(100 * (cap_mean - full_mean) / full_mean)
    change = relative_change_ci(fulls, caps, metric="f1_micro", n_boot=200)
    assert (cell.delta_low, cell.delta_high) == (pytest.approx(change.low), pytest.approx(change.high))
    assert "retrained 3 times per seed" in render_markdown(table)


def test_a_perfect_score_keeps_a_width_in_the_table() -> None:
    """Every test utterance right in both seeds: the printed interval is the exact floor for 56 of
    56, [100 x 0.025^(1/56), 100] = [93.6, 100], not [100, 100]; the footer says so."""
    results = [make_result("hubert_base", "gender", "en", seed=seed, preds=spoken([14] * 4, seed=seed))
               for seed in (0, 1)]
    table = tables_by_name(results)["table1_gender"]
    cell = table.rows[0].cells["gender.en.f1_micro"]
    assert cell.value == 100.0 and cell.high == 100.0 and cell.low == pytest.approx(100 * 0.025 ** (1 / 56))
    md = render_markdown(table)
    assert "100.0 [93.6, 100.0]" in markdown_line(md, "HuBERT-B") and "Clopper-Pearson" in md


def word_result(up: str, **setting: Any) -> dict[str, Any]:
    res = make_result(up, "gender", "en")
    res["cell"]["downstream"] = res["cell"]["task"] = "word_discrimination"
    res["task"].update({"name": "word_discrimination", "kind": "word_discrimination", "group": "words",
                        "paper_table": "word_discrimination"})
    res["word_discrimination"] = {"matched": {"accuracy": 90.0, "test_language": "en", "correct": [1] * 9 + [0]},
                                  "mismatched": {"accuracy": 70.0, "test_language": "fi", **setting}}
    res["metrics"] = {"accuracy": 90.0}
    return res


def test_mismatched_only_for_models_trained_on_a_language() -> None:
    results = [word_result("siamese", train_language="en"), word_result("mfcc", train_language=None),
               word_result("wav2vec2_base")]  # an old result: no train_language, not a small model
    table = tables_by_name(results)["table5_word_discrimination"]
    cells = {r.key: r.cells for r in table.rows}
    assert cells["siamese"]["mismatched.fi"].value == pytest.approx(70.0)
    assert cells["mfcc"]["mismatched.fi"].status == "missing"
    assert cells["wav2vec2_base"]["mismatched.fi"].status == "missing"
    assert "trained for a language" in render_markdown(table)


def test_params_of_small_models_as_encoder_and_whole_model() -> None:
    counted = {**INFERENCE, "params": 146_304, "params_full_model": 286_977}
    res = make_result("siamese", "gender", "en", analyses={"inference_time": counted})
    tables = tables_by_name([res, make_result("mfcc", "gender", "en")])
    line = markdown_line(render_markdown(tables["table1_gender"]), "Siamese")
    assert "146K / 287K" in line
    inf = markdown_line(render_markdown(tables["table9_inference_time"]), "Siamese")
    assert "146K / 287K" in inf
    # an older result without the whole-model count: the card's published (whole-model) figure
    old = make_result("siamese", "gender", "en", analyses={"inference_time": {**INFERENCE, "params": 146_304}})
    old["upstream"]["params_published"] = 270e3
    assert "146K / 270K" in markdown_line(render_markdown(tables_by_name([old])["table1_gender"]), "Siamese")


def test_inference_footer_counts_the_subsets() -> None:
    res = make_result("hubert_base", "gender", "en", analyses={"inference_time": INFERENCE})
    md = render_markdown(tables_by_name([res])["table9_inference_time"])
    assert "here 15 short and 4 long utterances" in md


def test_footer_counts_seeds_per_column_and_names_the_heads() -> None:
    results = [make_result("hubert_base", "gender", lang, seed=seed) for lang in ("en", "fi") for seed in (0, 1)]
    results = [r for r in results if (r["cell"]["language"], r["cell"]["seed"]) != ("fi", 1)]
    for r in results:
        r["downstream"] = {"name": "gender", "head": "linear", "head_args": {"binary_output": "sigmoid"},
                           "training": {"max_epochs": 40, "patience": 8, "batch_size": 32, "lr": 0.001},
                           "profile": "smoke", "word_level": False}
    md = render_markdown(tables_by_name(results)["table1_gender"])
    assert "seeds per score: 2 in Gen-En F1, Gen-En UAR; 1 in Gen-Fi F1, Gen-Fi UAR" in md
    assert ("Probe heads of profile `smoke`: gender: linear (binary_output sigmoid), up to 40 epochs, patience 8, "
            "batch 32, lr 0.001.") in md
