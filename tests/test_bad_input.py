"""Bad data and bad configuration never crash a run and never pass silently.

Data: a real corpus in the manifest format (JSONL, docs/corpora.md) with good espeak speech and
every kind of bad item found in the wild. A real cell (the MFCC card on a gender task) runs
through `bench run` in a fresh process: each bad item is left out with a message naming the item
and the reason (in the result's ``data.skipped_examples``), the good ones (including stereo, 8
kHz, 44.1 kHz, MP3 and a 10-minute file) are used, the result counts what was skipped and the
command prints it. `bench data check` lists the same items without running a model.

Configuration: unknown keys, wrong types, duplicate keys, unknown names (with a did-you-mean),
card and head arguments that do not bind, an unset environment variable: `bench run` / `bench
matrix` exit with code 2 and say what, where and how to fix on stderr, before anything is
created (no cache, results, models, cards or leaderboards folder).
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from harness import yamlio
from harness.data import resample
from tests.audio_fixtures import speak
from tests.bench_process import BenchSandbox, describe

LONG_S = 600.0  # the 10-minute file: speech, then silence


# --------------------------------------------------------------------------- the corpus
def _speech(i: int, gender: str) -> np.ndarray:
    voice, pitch = ("en+m3", 35) if gender == "male" else ("en+f2", 75)
    texts = ["the cat sat on the mat", "wake me up at seven", "play some music please", "turn off the lights"]
    wav, _ = speak(texts[i % len(texts)], voice=voice, pitch=pitch, seed=i)
    return wav


def _latin1_textgrid(path: Path) -> None:
    """A valid long TextGrid whose word label is Latin-1 encoded (not UTF-8)."""
    text = ('File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = 1.0\ntiers? <exists>\n'
            'size = 1\nitem []:\n    item [1]:\n        class = "IntervalTier"\n        name = "words"\n'
            '        xmin = 0\n        xmax = 1.0\n        intervals: size = 1\n        intervals [1]:\n'
            '            xmin = 0.1\n            xmax = 0.5\n            text = "café"\n')
    path.write_bytes(text.encode("latin-1"))


def build_bad_corpus(root: Path) -> dict[str, Any]:
    """Write the corpus; return what the tests expect: good ids, and per bad item (id or manifest
    line, stage, a phrase of its reason)."""
    wav_dir = root / "wav"
    wav_dir.mkdir(parents=True)
    (root / "align").mkdir()
    rows: list[bytes] = []
    expect: dict[str, Any] = {"good": [], "bad": {}}

    def row(uid: str, audio: str, split: str, gender: str | None, **extra: Any) -> int:
        labels = {} if gender is None else {"gender": gender}
        rows.append(json.dumps({"id": uid, "audio": audio, "split": split, "speaker": uid, "labels": labels,
                                "text": "", **extra}).encode() + b"\n")
        return len(rows)

    def good(uid: str, split: str, gender: str, wav: np.ndarray, *, rate: int = 16000, **write: Any) -> None:
        name = f"{uid}.{write.pop('suffix', 'wav')}"
        sf.write(wav_dir / name, wav, rate, **write)
        row(uid, f"wav/{name}", split, gender)
        expect["good"].append(uid)

    genders = ["male", "female"]
    for i, split in enumerate(["train"] * 4 + ["dev"] * 2 + ["test"] * 2):
        good(f"good{i}", split, genders[i % 2], _speech(i, genders[i % 2]), subtype="PCM_16")
    m, f = _speech(10, "male"), _speech(11, "female")
    good("stereo", "train", "male", np.stack([m, 0.5 * m], axis=1), subtype="PCM_16")
    good("rate8k", "train", "female", resample(f, 16000, 8000), rate=8000, subtype="PCM_16")
    good("rate44k", "dev", "male", resample(m, 16000, 44100), rate=44100, subtype="PCM_16")
    good("mp3", "train", "female", f, format="MP3", suffix="mp3")
    long = np.zeros(int(LONG_S * 16000), np.float32)
    long[: len(f)] = f
    good("long10min", "test", "female", long, subtype="PCM_16")

    def bad(uid: str, stage: str, reason: str, *, line: int | None = None) -> None:
        expect["bad"][uid] = {"stage": stage, "reason": reason, "line": line}

    (wav_dir / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    bad("corrupt", "corpus", "unreadable audio", line=row("corrupt", "wav/corrupt.wav", "train", "male"))
    (wav_dir / "empty.wav").write_bytes(b"")
    bad("empty", "corpus", "unreadable audio (empty file, 0 bytes)", line=row("empty", "wav/empty.wav", "train", "female"))
    sf.write(wav_dir / "zeros.wav", np.zeros(32000, np.float32), 16000, subtype="PCM_16")
    row("zeros", "wav/zeros.wav", "train", "male")
    bad("zeros", "features", "all samples are zero")
    nan = _speech(12, "female").astype(np.float32)
    nan[1000:1100] = np.nan
    sf.write(wav_dir / "nan.wav", nan, 16000, subtype="FLOAT")
    row("nan", "wav/nan.wav", "train", "female")
    bad("nan", "features", "NaN")
    sf.write(wav_dir / "alien.wav", _speech(13, "male"), 16000, subtype="PCM_16")
    row("alien", "wav/alien.wav", "train", "unknown")
    bad("alien", "labels", "gender 'unknown' is not one of the task's classes")
    sf.write(wav_dir / "nolabel.wav", _speech(14, "male"), 16000, subtype="PCM_16")
    row("nolabel", "wav/nolabel.wav", "train", None)
    bad("nolabel", "labels", "no 'gender' label")
    sf.write(root.parent / "outside.wav", _speech(15, "male"), 16000, subtype="PCM_16")
    bad("escape", "corpus", "outside the corpus root", line=row("escape", "../outside.wav", "train", "male"))
    sf.write(wav_dir / "latin.wav", _speech(16, "female"), 16000, subtype="PCM_16")
    rows.append(b'{"id": "latin", "audio": "wav/latin.wav", "split": "train", "labels": {"gender": "female"}, '
                b'"text": "caf\xe9 au lait"}\n')
    bad("latin", "corpus", "not UTF-8 text", line=len(rows))
    _latin1_textgrid(root / "align" / "latin.TextGrid")
    sf.write(wav_dir / "tg.wav", _speech(17, "male"), 16000, subtype="PCM_16")
    bad("tg", "corpus", "not a readable TextGrid",
        line=row("tg", "wav/tg.wav", "train", "male", alignment="align/latin.TextGrid"))
    # a good recording whose alignment has a word after the end: the word is dropped, the item kept
    sf.write(wav_dir / "pastend.wav", _speech(18, "male"), 16000, subtype="PCM_16")
    row("pastend", "wav/pastend.wav", "test", "male", words=[["the", 0.0, 0.2], ["ghost", 30.0, 30.5]])
    expect["good"].append("pastend")
    expect["word_dropped"] = ("pastend", "ghost")
    (root / "manifest.jsonl").write_bytes(b"".join(rows))
    return expect


def add_bad_corpus_to_workspace(root: Path, corpus: Path) -> None:
    """A corpus ``badcorpus`` (manifest), a task and downstream ``gender_bad`` reading it, and a
    profile ``badinput`` (real data, the MFCC card, no analyses) in the workspace's YAML."""
    bench = yamlio.load(root / "benchmark.yaml", expand=False)
    bench["corpora"]["badcorpus"] = {"adapter": "manifest", "root": str(corpus), "options": {"path": "manifest.jsonl"}}
    bench["profiles"]["badinput"] = {
        "data": "real", "upstreams": ["mfcc"], "downstreams": ["gender_bad"], "languages": ["en"], "seeds": [0],
        "analyses": {"layer_sweep": True, "capacity": False, "overlap": False, "inference_time": False, "umap": False}}
    _dump(root / "benchmark.yaml", bench)
    task = yamlio.load(root / "tasks" / "gender.yaml", expand=False)
    task["sources"] = {"real": {"en": {"corpus": "badcorpus", "classes": ["female", "male"]}}}
    _dump(root / "tasks" / "gender_bad.yaml", task)
    ds = yamlio.load(root / "downstreams" / "gender.yaml", expand=False)
    ds["task"] = "gender_bad"
    _dump(root / "downstreams" / "gender_bad.yaml", ds)


def _dump(path: Path, data: Any) -> None:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The corpus, a `bench run` of the MFCC gender cell on it and a `bench data check`, in parallel."""
    base = tmp_path_factory.mktemp("bad-input")
    expect = build_bad_corpus(base / "data" / "corpus")
    sb = BenchSandbox.create(base / "sandbox")
    add_bad_corpus_to_workspace(sb.root, base / "data" / "corpus")
    with ThreadPoolExecutor(2) as pool:
        run = pool.submit(sb.run, "run", "--upstream", "mfcc", "--downstream", "gender_bad", "--profile", "badinput",
                          "--language", "en", "--no-progress")
        check = pool.submit(sb.run, "data", "check", "badcorpus", "--profile", "badinput", "--language", "en")
        run_proc, check_proc = run.result(), check.result()
    result_path = sb.results / "badinput" / "mfcc" / "gender_bad" / "en" / "seed0.json"
    result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    return {"expect": expect, "run": run_proc, "check": check_proc, "result": result, "manifest": base / "data" /
            "corpus" / "manifest.jsonl"}


def _messages_naming(messages: list[str], uid: str, info: dict[str, Any], manifest: Path) -> list[str]:
    """The messages that name item ``uid``: by id, or by manifest line for rows the adapter refused."""
    name = f"{uid}:" if info["line"] is None else f"{manifest}:{info['line']}:"
    return [m for m in messages if m.startswith(name)]


# --------------------------------------------------------------------------- data: the cell
def test_cell_runs_and_succeeds_on_the_good_items(bad_run: dict[str, Any]) -> None:
    """Nothing crashes: the command exits 0 with status ok and no traceback."""
    proc = bad_run["run"]
    assert proc.returncode == 0, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert bad_run["result"]["status"] == "ok"


def test_every_bad_item_is_named_with_its_reason(bad_run: dict[str, Any]) -> None:
    """Each bad item has exactly one message naming it (its id, or its manifest line when the
    line cannot be read) and the reason, in the stage that found it."""
    data = bad_run["result"]["data"]
    for uid, info in bad_run["expect"]["bad"].items():
        found = _messages_naming(data["skipped_examples"], uid, info, bad_run["manifest"])
        assert len(found) == 1, (uid, found, data["skipped_examples"])
        assert info["reason"] in found[0], (uid, found)


def test_good_items_are_used_and_skipped_ones_are_counted(bad_run: dict[str, Any]) -> None:
    """Stereo, 8 kHz, 44.1 kHz, MP3 and the 10-minute file are used (test predictions or training
    items); the counts by stage add up to the total skipped."""
    res = bad_run["result"]
    data = res["data"]
    bad = bad_run["expect"]["bad"]
    by_stage = {s: sum(1 for b in bad.values() if b["stage"] == s) for s in ("corpus", "labels", "features")}
    by_stage["corpus"] += 1  # the word after the end of "pastend" is dropped with a message
    assert data["skipped_by_stage"] == by_stage
    assert data["skipped"] == sum(by_stage.values())
    assert data["items"] == {"train": 7, "dev": 3, "test": 4}
    assert set(res["predictions"]["ids"]) == {"good6", "good7", "long10min", "pastend"}
    uid, word = bad_run["expect"]["word_dropped"]
    assert any(m.startswith(f"{uid}: word {word!r}") and "past the end" in m for m in data["skipped_examples"])


def test_the_command_prints_what_it_skipped(bad_run: dict[str, Any]) -> None:
    """`bench run` prints the count by stage and the items with their reasons."""
    out = bad_run["run"].stdout
    total = bad_run["result"]["data"]["skipped"]
    assert f"skipped {total} item(s) (corpus 6, labels 2, features 2):" in out, out
    for phrase in ("unreadable audio", "outside the corpus root", "not UTF-8 text", "all samples are zero"):
        assert phrase in out, phrase


def test_data_check_lists_the_bad_items(bad_run: dict[str, Any]) -> None:
    """`bench data check` (no model) reports the rows it could not read and the label outside the
    task's classes, each with its line or id and reason; the exit code says problems were found."""
    proc = bad_run["check"]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, describe(proc)
    out = proc.stdout
    manifest = bad_run["manifest"]
    for uid, info in bad_run["expect"]["bad"].items():
        if info["stage"] == "corpus":
            assert f"{manifest}:{info['line']}:" in out and info["reason"] in out, (uid, out)
    assert "alien: gender 'unknown' is not one of the task's classes" in out
    assert "skipped while reading: 6" in out


# --------------------------------------------------------------------------- configuration
OUTPUT_DIRS = ("cache", "results", "models", "cards", "leaderboards")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _many_problems(root: Path) -> None:
    ds, cards = root / "downstreams", root / "upstreams" / "cards"
    _edit(ds / "gender.yaml", "pool_window_s:", "pool_windw_s:")
    _edit(ds / "emotion.yaml", "batch_size: 32", "batch_size: many")
    _edit(ds / "topic.yaml", "head: bilstm", "head: bilstn")
    _edit(ds / "intent.yaml", "task: intent", "task: intnet")
    _edit(cards / "mfcc.yaml", "n_mfcc: 23", "n_mfc: 23")


def _duplicate_key(root: Path) -> None:
    _edit(root / "downstreams" / "gender.yaml", "task: gender\n", "task: gender\ntask: emotion\n")


def _unset_variable(root: Path) -> None:
    _edit(root / "benchmark.yaml", "root: ${IEMOCAP_ROOT:-data/IEMOCAP_full_release}", "root: ${BENCH_TEST_UNSET_ROOT}")


def _nothing(root: Path) -> None:
    return None


RUN = ("run", "--upstream", "mfcc", "--downstream", "gender", "--profile", "smoke", "--language", "en", "--no-progress")
MATRIX = ("matrix", "--profile", "smoke", "--no-progress")

# name: (edit of the workspace, command, phrases that must all be on stderr)
CONFIG_CASES: dict[str, tuple[Any, tuple[str, ...], tuple[str, ...]]] = {
    "many problems at once": (_many_problems, MATRIX, (
        "5 configuration problem(s)", "unknown key 'pool_windw_s'", "Did you mean 'pool_window_s'",
        "training.batch_size", "'many'", "'bilstn'", "Did you mean 'bilstm'", "'intnet'", "Did you mean 'intent'",
        "args.n_mfc", "Did you mean 'n_mfcc'")),
    "duplicate key": (_duplicate_key, RUN, ("duplicate key 'task'", "gender.yaml", "Keep one of them")),
    "unset variable": (_unset_variable, MATRIX, ("BENCH_TEST_UNSET_ROOT is not set and has no default",
                                                 "benchmark.yaml", "export BENCH_TEST_UNSET_ROOT")),
    "unknown names, all at once": (_nothing, ("run", "--upstream", "mfc", "--downstream", "gendr", "--profile",
                                              "smok", "--language", "fr_FR", "--no-progress"), (
        "4 configuration problem(s)", "'mfc'", "Did you mean 'mfcc'", "'gendr'", "Did you mean 'gender'",
        "'smok'", "Did you mean 'smoke'", "'fr_FR'")),
    "unknown --only values": (_nothing, (*MATRIX, "--only", "upstream=mfc,downstream=emotoin"),
                              ("--only", "'mfc'", "Did you mean 'mfcc'", "'emotoin'", "Did you mean 'emotion'")),
    "overrides of the wrong type and card args that do not bind": (
        _nothing, (*RUN, "--set", "training.lr=fast", "--set", "upstream.args.checkpoint=/x.pt"),
        ("training.lr", "'fast'", "args.checkpoint", "unknown argument 'checkpoint'", "upstream 'mfcc'")),
    "override of an unknown key": (_nothing, (*RUN, "--set", "pool_windw_s=3"),
                                   ("unknown key 'pool_windw_s'", "Did you mean 'pool_window_s'")),
    "head args that do not bind": (_nothing, (*RUN, "--set", "head_args.hidden=3"),
                                   ("head_args.hidden", "unknown argument 'hidden'")),
}


@pytest.fixture(scope="module")
def config_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[BenchSandbox, subprocess.CompletedProcess]]:
    """Every configuration case as its own fresh process, two at a time."""
    base = tmp_path_factory.mktemp("config")
    sandboxes = {}
    for i, (name, (edit, _, _)) in enumerate(CONFIG_CASES.items()):
        sb = BenchSandbox.create(base / f"case{i}")
        edit(sb.root)
        sandboxes[name] = sb
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(sb.run, *CONFIG_CASES[name][1], timeout=300) for name, sb in sandboxes.items()}
        return {name: (sandboxes[name], f.result()) for name, f in futures.items()}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_config_error_is_clear_and_stops_before_any_work(config_runs: dict, case: str) -> None:
    """Exit code 2, the message on stderr (what, where, expected / found, did-you-mean), no
    traceback, and no output folder created."""
    sb, proc = config_runs[case]
    assert proc.returncode == 2, describe(proc)
    assert "Traceback" not in proc.stderr
    for phrase in CONFIG_CASES[case][2]:
        assert phrase in proc.stderr, f"{case}: {phrase!r} not in stderr:\n{proc.stderr}"
    created = [name for name in OUTPUT_DIRS if sb.paths[name].exists()]
    assert created == [], f"{case}: created {created} before failing"
