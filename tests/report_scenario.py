"""A broad set of hand-made results in the real version-1 format (tests/test_leaderboard.py's
``make_result``) exercising every leaderboard table; tests/test_report_frozen.py compares what
they render to to the tables the pre-record harness rendered from them."""

from __future__ import annotations

from typing import Any

from tests.test_leaderboard import CAPACITY, CARDS, INFERENCE, make_result


def scenario(profile: str, corpus: str) -> list[dict[str, Any]]:
    """About 200 results: 8 cards x 4 tasks x 3 languages x 2 seeds (failed, unavailable, fallback,
    capacity, inference time, single-layer and disagreeing layers, correctness flags), word
    discrimination (flags, mismatched, a bare number), an extra task, a row with its own
    downstream, a result without predictions, one failed while planning and one with no sections."""
    rs: list[dict[str, Any]] = []
    for up in CARDS:
        for task in ("gender", "emotion", "intent", "emotion_discrimination"):
            for lang in ("en", "fi", "fr"):
                for seed in (0, 1):
                    status = "ok"
                    if (up, lang, seed) == ("wav2vec2_large", "fi", 1):
                        status = "failed"
                    if (up, lang) == ("resemblyzer", "fr"):
                        status = "unavailable"
                    extra: dict[str, Any] = {}
                    if (up, task, lang, seed) == ("hubert_base", "gender", "en", 0):
                        extra = {"analyses": {"capacity": CAPACITY, "inference_time": INFERENCE}}
                    if (up, task, lang, seed) == ("mfcc", "gender", "fi", 0):
                        extra = {"analyses": {"capacity": {"metrics": {"f1_micro": 50.0}, "k": 75}}}
                    r = make_result(up, task, lang, seed, status=status, profile=profile, corpus=corpus,
                                    accuracy=0.5 + 0.05 * (len(up) % 7), fallback=(lang != "en" and up == "hubert_base"),
                                    **extra)
                    if status == "ok" and seed == 1 and up == "wav2vec2_base":
                        r["layer"] = {"chosen": 5, "rule": "sweep", "num_layers": 13}
                    if status == "ok" and up == "mfcc":
                        r["layer"] = {"chosen": 0, "rule": "single layer", "num_layers": 1}
                    if task == "emotion_discrimination" and status == "ok":
                        r["predictions"] = {"ids": [f"t{i}" for i in range(8)], "correct": [1, 0, 1, 1, 1, 0, 1, seed]}
                        r["metrics"] = {"accuracy": 70.0 + seed}
                    rs.append(r)
    for lang, acc in (("en", 90.0), ("fi", 80.0)):
        r = make_result("siamese", "gender", lang, profile=profile, corpus=corpus)
        r["cell"]["downstream"] = r["cell"]["task"] = "word_discrimination"
        r["task"].update({"name": "word_discrimination", "kind": "word_discrimination", "group": "words",
                          "paper_table": "word_discrimination"})
        r["word_discrimination"] = {"matched": {"accuracy": acc, "test_language": lang, "correct": [1] * 9 + [0]},
                                    "mismatched": {"accuracy": 70.0, "test_language": "fr" if lang == "en" else "en"}}
        r["metrics"] = {"accuracy": acc}
        rs.append(r)
    w = make_result("mfcc", "gender", "en", profile=profile, corpus=corpus)
    w["cell"]["downstream"] = w["cell"]["task"] = "word_discrimination"
    w["task"].update({"name": "word_discrimination", "kind": "word_discrimination"})
    w["word_discrimination"] = {"matched": 88.5}
    rs.append(w)
    sp = make_result("hubert_base", "gender", "en", profile=profile, corpus=corpus)
    sp["cell"]["downstream"] = sp["cell"]["task"] = "speaker"
    sp["task"].update({"name": "speaker", "group": "speaker"})
    rs.append(sp)
    other = make_result("hubert_base", "emotion", "en", profile=profile, corpus=corpus)
    other["cell"]["downstream"] = "emotion_linear"
    rs.append(other)
    nopred = make_result("wavlm_large_ft", "gender", "fr", profile=profile, corpus=corpus)
    del nopred["predictions"]
    rs.append(nopred)
    rs.append({"schema": 1, "status": "failed", "key": None,
               "cell": {"profile": profile, "upstream": "wavlm_large", "downstream": "gender", "language": "en", "seed": 0},
               "error": {"type": "UnknownNameError", "message": "no upstream card 'wavlm_large'"}, "timings": {"total_s": 0.1}})
    rs.append({"schema": 1, "status": "ok", "cell": {"upstream": "x", "downstream": "gender", "language": "en", "seed": 0}})
    return rs
