"""The fidelity settings (audit G3, G4, G9, G10): what the `paper` profile takes from the authors'
code where the text is silent, each a named setting that enters the keys only when set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from corpora_fixtures import speech

from harness.config import CellSpec, Workspace, parse_overrides, resolve_cell
from harness.corpora.load import task_splits
from harness.data import Dataset, Utterance
from harness.features.build import feature_recipe
from harness.features.cache import FeatureRecipe
from harness.features.extract import ensure_features
from harness.probe.heads import LinearHead
from harness.probe.sets import build_feature_sets
from harness.schema import Downstream
from tests.analysis_fixtures import ProjectedMFCC
from tests.audio_fixtures import make_dataset

SR = 16000


class RecordingUpstream(ProjectedMFCC):
    """ProjectedMFCC that records how many samples of each utterance its forward received."""

    def __init__(self) -> None:
        super().__init__()
        self.seen_samples: list[int] = []

    def forward(self, wavs_BT: torch.Tensor, lengths_B: torch.Tensor):  # type: ignore[override]
        self.seen_samples += [int(n) for n in lengths_B]
        return super().forward(wavs_BT, lengths_B)


def _long_dataset(root: Path) -> Dataset:
    """Two 7.5 s utterances of real (espeak) speech."""
    root.mkdir(parents=True, exist_ok=True)
    utts = []
    for i, (voice, gender) in enumerate((("en+f2", "female"), ("en+m3", "male"))):
        wav = speech("the cat sat on the mat and then it went to sleep", voice=voice)
        wav = np.tile(wav, int(np.ceil(7.5 * SR / len(wav))))[: int(7.5 * SR)]
        path = root / f"long{i}.wav"
        sf.write(path, wav, SR, subtype="PCM_16")
        utts.append(Utterance(id=f"long{i}", path=str(path), split="train", language="en", speaker=f"s{i}",
                              labels={"gender": gender}, duration_s=7.5))
    return Dataset(name="long", language="en", root=root, utterances=tuple(utts))


def test_paper_gender_feeds_the_upstream_5_s_of_audio(workspace_dir: Path, tmp_path: Path) -> None:
    """G3: in `paper` the upstream sees the first 5 s (the authors' code cut the audio before the
    model); `embedded` keeps the whole utterance and pools its first 5 s of frames."""
    ws = Workspace(workspace_dir)
    paper = resolve_cell(ws.snapshot, CellSpec("paper", "mfcc", "gender", "en", 0))
    embedded = resolve_cell(ws.snapshot, CellSpec("embedded", "mfcc", "gender", "en", 0))
    assert paper.downstream.config.input_window_s == 5.0 and paper.downstream.config.pool_window_s is None
    assert embedded.downstream.config.input_window_s is None and embedded.downstream.config.pool_window_s == 5.0
    recipe = feature_recipe(paper)
    assert recipe.input_window_s == 5.0 and feature_recipe(embedded).input_window_s is None
    ds = _long_dataset(tmp_path / "audio")
    cut, whole = RecordingUpstream(), RecordingUpstream()
    s_cut = ensure_features(workspace=ws, card=ws.card("mfcc"), dataset=ds, language="en", recipe=recipe,
                            upstream=cut, progress=False)
    s_whole = ensure_features(workspace=ws, card=ws.card("mfcc"), dataset=ds, language="en",
                              recipe=FeatureRecipe(), upstream=whole, progress=False)
    assert cut.seen_samples == [5 * SR, 5 * SR]  # the upstream saw 5 s, never more
    assert whole.seen_samples == [int(7.5 * SR)] * 2
    assert s_cut.path != s_whole.path  # its own cache entry
    assert s_cut.meta.frame_counts[0] < s_whole.meta.frame_counts[0]


def test_new_settings_leave_existing_keys_alone(workspace_dir: Path) -> None:
    """Settings at their defaults do not enter the feature cache key nor the cell key, so the
    entries and results made before them stay valid; set, they do."""
    assert FeatureRecipe().key_dict() == {"v": 1, "pool_windows_s": (None, 5.0), "max_chunk_s": 30.0}
    assert FeatureRecipe(input_window_s=5.0).key_dict()["input_window_s"] == 5.0
    assert FeatureRecipe(extract_dtype="float32").key_dict()["extract_dtype"] == "float32"
    assert "input_window_s" not in Downstream(task="gender").key_dump()
    assert Downstream(task="gender", input_window_s=5.0).key_dump()["input_window_s"] == 5.0
    spec = CellSpec("smoke", "mfcc", "gender", "en", 0)
    base = resolve_cell(Workspace(workspace_dir).snapshot, spec).key
    same = resolve_cell(Workspace(workspace_dir, parse_overrides(["profile.normalize=train_zscore"])).snapshot, spec).key
    assert same == base
    for override in ("profile.normalize=utterance_layer_norm", "profile.extract_dtype=float32",
                     "downstream.input_window_s=5"):
        other = resolve_cell(Workspace(workspace_dir, parse_overrides([override])).snapshot, spec).key
        assert other != base, override


def test_utterance_layer_norm_against_a_hand_computation(workspace_dir: Path, tmp_path: Path) -> None:
    """G4: ``utterance_layer_norm`` normalises each utterance's frames of a layer over time x dims
    (no affine), and pooled features are the mean of those frames (SpeechBrain's output_norm, then
    mean pooling)."""
    ws = Workspace(workspace_dir)
    ds = make_dataset(tmp_path / "audio", n=4)
    store = ensure_features(workspace=ws, card=ws.card("mfcc"), dataset=ds, language="en",
                            upstream=ProjectedMFCC(), progress=False)
    task = ws.snapshot.task("gender")
    source = task.sources["synth"]["en"]
    splits = task_splits(ds, task=task, source=source)
    frames, _ = build_feature_sets(store, splits, layer=2, features="frames", pool_window_s=None, word_items=False,
                                   normalize="utterance_layer_norm")
    pooled, _ = build_feature_sets(store, splits, layer=2, features="pooled", pool_window_s=None, word_items=False,
                                   normalize="utterance_layer_norm")
    raw, off = store.gather(frames["train"].ids, layer=2)
    for i in range(len(frames["train"])):
        seg = raw[off[i]: off[i + 1]].astype(np.float64)
        hand = (seg - seg.mean()) / np.sqrt(seg.var() + 1e-5)
        got = frames["train"].x[off[i]: off[i + 1]].astype(np.float64)
        np.testing.assert_allclose(got, hand, atol=2e-2)
        np.testing.assert_allclose(pooled["train"].x[i].astype(np.float64), hand.mean(axis=0), atol=2e-2)
    assert frames["train"].mean is None  # no training statistics on top
    zscored, _ = build_feature_sets(store, splits, layer=2, features="pooled", pool_window_s=None, word_items=False,
                                    normalize="train_zscore")
    assert zscored["train"].mean is not None


def test_paper_profile_takes_the_codes_choices(workspace_dir: Path) -> None:
    """G9, G10: the paper profile's settings where the text is silent and the code is clear."""
    snap = Workspace(workspace_dir).snapshot
    _, paper = snap.profile("paper")
    assert paper.normalize == "utterance_layer_norm" and paper.extract_dtype == "float32"
    assert paper.small_models.lee_loss == "l1" and paper.small_models.lee_full_epochs
    assert set(paper.analyses.capacity_tasks) == {"gender", "emotion", "intent", "topic", "request"}
    gender = snap.resolve_downstream("gender", profile="paper")
    assert gender.training.max_epochs == 30 and gender.training.patience is None and gender.training.grad_clip == 5
    assert gender.head_args["bias"] is False
    assert LinearHead(input_size=4, num_classes=2, bias=False).linear.bias is None
    for name in ("emotion", "intent", "topic", "request"):
        assert snap.resolve_downstream(name, profile="paper").training.grad_clip == 5
    _, embedded = snap.profile("embedded")
    assert embedded.normalize == "train_zscore" and embedded.extract_dtype == "card"
    assert embedded.small_models.lee_loss == "mse" and not embedded.small_models.lee_full_epochs
    assert snap.resolve_downstream("gender", profile="embedded").training.grad_clip is None
    for card in ("whisper_small", "whisper_small_fi", "whisper_small_fr"):
        assert snap.card(card).card.args["window"] == "padded30"
