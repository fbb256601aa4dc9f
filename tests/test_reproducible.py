"""Same commit, same machine: the same scores and layers, however the work was scheduled.

A random-init WavLM (the embedded profile's control, shrunk to 4 layers of width 32) runs through
``bench matrix`` in fresh workspaces and separate processes, with different schedules: all
downstreams in one process one after the other, or one downstream in worker processes. Its layer
sweeps, chosen layers, metrics, predictions and training curves must be identical. Before the
sweep seeded each layer's head, its initialisation came from whatever the process had run
before, and the control's layers changed from run to run (issue 15).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.testing import shrink_arch
from tests.bench_process import BenchSandbox, describe, outcomes
from tests.conftest import REPO
from tests.matrix_fixtures import add_profile, dump_yaml

PROFILE = "repro"
CARD = "tiny_wavlm"
UPSTREAM = f"{CARD}@random"
# a bigger corpus than smoke's (4 / 2 / 2 speakers), so that dev F1 steps are finer than 8 points
SYNTH = {"speakers_per_language": 10, "utterances_per_speaker": 6, "split_speakers": [6, 2, 2],
         "long_per_test_split": 1, "short_per_test_split": 1, "seed": 0}


def _sandbox(base: Path) -> BenchSandbox:
    """A fresh workspace with the tiny WavLM card and the test profile (nothing computed yet)."""
    sb = BenchSandbox.create(base)
    card = yaml.safe_load((REPO / "upstreams" / "cards" / "wavlm_base_plus.yaml").read_text(encoding="utf-8"))
    card["args"]["arch"] = {**shrink_arch(card["args"]["arch"]), "num_hidden_layers": 4}
    card["meta"] = {**card["meta"], "display": "Tiny WavLM", "paper_row": None, "params": None}
    (sb.root / "upstreams" / "cards" / f"{CARD}.yaml").write_text(dump_yaml(card), encoding="utf-8")
    add_profile(sb.root, PROFILE, upstreams=[UPSTREAM], downstreams=["gender", "emotion"], synth=SYNTH, seeds=[0, 1])
    return sb


def _sweeps(results: Path) -> dict[str, Any]:
    """The sweep records by path, without the path of their plot (which names the workspace)."""
    out = {}
    for p in sorted((results / PROFILE / "sweeps").rglob("*.json")):
        result = json.loads(p.read_text())["result"]
        result.pop("plot", None)
        out[p.relative_to(results).as_posix()] = result
    return out


def _matrix(sb: BenchSandbox, *args: str) -> None:
    proc = sb.run("matrix", "--profile", PROFILE, "--no-progress", *args, timeout=900)
    assert proc.returncode == 0, describe(proc)


@pytest.mark.slow
def test_scores_and_layers_do_not_depend_on_the_schedule(tmp_path: Path) -> None:
    serial, workers = _sandbox(tmp_path / "serial"), _sandbox(tmp_path / "workers")
    _matrix(serial, "--workers", "1")  # the gender sweep runs before the emotion sweep, in the same process
    _matrix(workers, "--workers", "2", "--only", "downstream=emotion")  # the emotion sweep first, in a worker
    a, b = outcomes(serial.results), outcomes(workers.results)
    emotion = sorted(k for k in b if "/emotion/" in k)
    assert len(emotion) == 2 and set(emotion) <= set(a), (sorted(a), sorted(b))
    for key in emotion:
        assert b[key]["status"] == "ok", b[key]
        assert a[key] == b[key], key
    sweeps_a, sweeps_b = _sweeps(serial.results), _sweeps(workers.results)
    assert sorted(sweeps_b) == [f"{PROFILE}/sweeps/{UPSTREAM}/emotion/en.json"]
    curve = sweeps_b[f"{PROFILE}/sweeps/{UPSTREAM}/emotion/en.json"]
    assert len(curve["curve"]) == 2, curve  # layers 1 and 3 of 4: a real choice
    assert sweeps_a[f"{PROFILE}/sweeps/{UPSTREAM}/emotion/en.json"] == curve

    again = _sandbox(tmp_path / "again")  # the same command twice: every cell identical
    _matrix(again, "--workers", "1")
    assert outcomes(again.results) == a and _sweeps(again.results) == sweeps_a
    assert len(a) == 4 and all(o["status"] == "ok" for o in a.values()), a
