"""The embedded synthetic corpus: real generation at a tiny size (8 speakers x 4 utterances)."""

from __future__ import annotations

import filecmp
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harness import synth
from harness.data import Dataset
from harness.errors import BenchError, ConfigError
from harness.registry import CORPORA

SMALL = {"speakers_per_language": 8, "utterances_per_speaker": 4, "split_speakers": (4, 2, 2),
         "short_per_test_split": 2, "long_per_test_split": 1, "seed": 0}
EXPECTED_CLASSES = {
    "en": ("intent", {"neutral", "sad", "happy", "angry"}),
    "fi": ("topic", {"neutral", "sadness", "joy", "affection", "anger"}),
    "fr": ("request", {"neutral", "sadness", "happiness", "anger", "fear", "disgust", "surprise"}),
}
FI_TOPICS = {"animal_friends", "sports_moments", "my_surroundings", "summer", "the_cursed_covid",
             "media_skills", "rated_r", "nature"}


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth_cache")


@pytest.fixture(scope="module")
def corpora(corpus_root: Path) -> dict[str, Dataset]:
    return {lang: synth.load_synth_corpus(root=corpus_root, language=lang, options=SMALL)
            for lang in EXPECTED_CLASSES}


def _folder(root: Path, language: str) -> Path:
    return synth.corpus_folder(root=root, language=language, spec=synth.validate_options(SMALL))


# --------------------------------------------------------------------------- registry and shape
def test_registry_loads_the_generator() -> None:
    assert CORPORA.load("synth") is synth.load_synth_corpus


def test_dataset_name_ids_and_counts(corpora: dict[str, Dataset]) -> None:
    assert len(corpora) == 3
    for lang, ds in corpora.items():
        assert ds.name == f"synth-{lang}" and ds.language == lang
        ids = [u.id for u in ds.utterances]
        assert len(ids) == len(set(ids))
        assert all(i.startswith(f"{lang}_spk") for i in ids)
        expected = 8 * 4 + SMALL["short_per_test_split"] + SMALL["long_per_test_split"]
        assert len(ids) == expected


def test_class_sets_of_the_three_languages(corpora: dict[str, Dataset]) -> None:
    for lang, (semantic, emotions) in EXPECTED_CLASSES.items():
        assert set(synth.LANGUAGE_PROFILES[lang].emotions) == emotions
        assert synth.LANGUAGE_PROFILES[lang].semantic_label == semantic
        labels = corpora[lang].utterances[0].labels
        assert set(labels) == {"gender", "emotion", semantic}
        assert {u.labels["emotion"] for u in corpora[lang].utterances} == emotions
    assert len(synth.EN_INTENTS) >= 12
    assert set(synth.FI_TOPICS) == FI_TOPICS
    assert set(synth.FR_REQUESTS) == {"affil", "presta"}
    assert {u.labels["topic"] for u in corpora["fi"].utterances} == FI_TOPICS


# --------------------------------------------------------------------------- splits and labels
def test_splits_are_speaker_disjoint_and_half_male(corpora: dict[str, Dataset]) -> None:
    for ds in corpora.values():
        gender_of: dict[str, set[str]] = {}
        speakers = {}
        for split, n in zip(("train", "dev", "test"), SMALL["split_speakers"], strict=True):
            utts = ds.split(split)
            speakers[split] = {u.speaker for u in utts}
            for u in utts:
                gender_of.setdefault(u.speaker, set()).add(u.labels["gender"])
            genders = Counter(next(iter(gender_of[s])) for s in speakers[split])
            assert len(speakers[split]) == n
            assert genders["male"] == genders["female"] == n // 2
        assert all(len(g) == 1 for g in gender_of.values())
        assert not speakers["train"] & speakers["dev"]
        assert not speakers["train"] & speakers["test"]
        assert not speakers["dev"] & speakers["test"]


def test_labels_are_balanced_in_every_split(corpora: dict[str, Dataset]) -> None:
    for lang, ds in corpora.items():
        for label in ("emotion", EXPECTED_CLASSES[lang][0]):
            n_classes = len({u.labels[label] for u in ds.utterances})
            for split in ("train", "dev", "test"):
                counts = Counter(u.labels[label] for u in ds.split(split))
                full = [counts.get(c, 0) for c in {u.labels[label] for u in ds.utterances}]
                if len(ds.split(split)) >= n_classes:
                    assert max(full) - min(full) <= 1, (lang, label, split, counts)
                else:
                    assert max(full) <= 1, (lang, label, split, counts)


def test_plan_is_a_pure_function_of_the_seed() -> None:
    spec = synth.validate_options(SMALL)
    assert synth.plan_corpus(language="en", spec=spec) == synth.plan_corpus(language="en", spec=spec)
    other = synth.validate_options({**SMALL, "seed": 1})
    assert synth.plan_corpus(language="en", spec=spec) != synth.plan_corpus(language="en", spec=other)


# --------------------------------------------------------------------------- audio and alignments
def test_wavs_are_16k_mono_pcm16(corpora: dict[str, Dataset]) -> None:
    for ds in corpora.values():
        for u in ds.utterances:
            info = sf.info(u.path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert info.frames / 16000 == pytest.approx(u.duration_s, abs=1e-5)


def test_alignments_lie_inside_the_audio_and_follow_the_text(corpora: dict[str, Dataset]) -> None:
    for ds in corpora.values():
        for u in ds.utterances:
            assert u.words, u.id
            assert " ".join(w.word for w in u.words) == " ".join(t for t, _, _ in synth.tokenize(u.text))
            previous_end = 0.0
            for w in u.words:
                assert 0.0 <= w.start_s < w.end_s <= u.duration_s, (u.id, w)
                assert w.start_s >= previous_end - 1e-9, (u.id, w)
                previous_end = w.end_s


def test_words_repeat_across_utterances(corpora: dict[str, Dataset]) -> None:
    for ds in corpora.values():
        counts = Counter(w.word for u in ds.utterances for w in u.words)
        assert sum(1 for c in counts.values() if c >= 2) >= 20


def test_test_split_has_short_and_long_utterances(corpora: dict[str, Dataset]) -> None:
    per_speaker = SMALL["utterances_per_speaker"]
    for ds in corpora.values():
        extras = [u for u in ds.split("test") if int(u.id.rsplit("_", 1)[1]) >= per_speaker]
        long_ = [u for u in extras if (u.duration_s or 0) > synth.LONG_MIN_S]
        short = [u for u in extras if (u.duration_s or 0) < synth.SHORT_MAX_S]
        assert len(long_) == SMALL["long_per_test_split"]
        assert len(short) == SMALL["short_per_test_split"]
        assert all(u.split == "test" for u in ds.utterances if (u.duration_s or 0) > synth.LONG_MIN_S)
        assert all(len(u.words) > 10 for u in long_)


@pytest.mark.parametrize("language,text", [
    ("en", "It's 7 o'clock, isn't it? Turn off the lights in the kitchen. Add milk."),
    ("fi", "Jääkiekko-ottelu alkaa, eikö? Käytimme maskia aina töissä. No niin!"),
    ("fr", "J'ai besoin d'une attestation. Est-ce que l'hôpital est pris en charge ?"),
])
def test_word_events_match_text_tokens(language: str, text: str) -> None:
    """Real espeak events for sentences whose word and event counts differ."""
    from harness.espeak import Espeak

    syn = Espeak.get().synth(text, voice=language, seed=5)
    duration_s = len(syn.audio) / syn.sample_rate
    words = synth.align_words(text=text, event_positions=[(w.text_position, w.start_sample) for w in syn.words],
                              audio=syn.audio, engine_rate_hz=syn.sample_rate, duration_s=duration_s)
    tokens = [t for t, _, _ in synth.tokenize(text)]
    assert " ".join(w.word for w in words) == " ".join(tokens)
    assert len(words) >= len(tokens) - 3
    assert all(0 <= w.start_s < w.end_s <= duration_s for w in words)
    assert all(a.end_s <= b.start_s + 1e-9 for a, b in zip(words, words[1:], strict=False))


def test_align_words_handles_missing_and_extra_events() -> None:
    rate = 1000
    audio = np.zeros(1000, dtype=np.int16)
    for lo, hi in ((0, 180), (200, 380), (400, 580), (600, 780), (800, 950)):
        audio[lo:hi] = 1000
    text = "Alpha, beta gamma. Delta epsilon"
    # no event for "beta", two for "gamma", one in the gap before "delta" (as espeak does)
    events = [(0, 0), (12, 400), (14, 500), (18, 600), (25, 800)]
    words = synth.align_words(text=text, event_positions=events, audio=audio, engine_rate_hz=rate, duration_s=1.0)
    assert [w.word for w in words] == ["alpha beta", "gamma", "delta", "epsilon"]
    assert words[0].start_s == 0.0 and words[0].end_s == pytest.approx(0.380)
    assert words[-1].end_s == pytest.approx(0.950)
    no_first = synth.align_words(text=text, event_positions=events[1:], audio=audio, engine_rate_hz=rate,
                                 duration_s=1.0)
    assert no_first[0].word == "alpha beta gamma"
    assert synth.align_words(text=text, event_positions=[], audio=audio, engine_rate_hz=rate, duration_s=1.0) == ()


# --------------------------------------------------------------------------- determinism and the cache
def test_generation_is_byte_identical(corpora: dict[str, Dataset], corpus_root: Path, tmp_path: Path) -> None:
    """Same bytes from a second generation, after this process synthesised something else."""
    from harness.espeak import Espeak

    Espeak.get().synth("something else entirely, to disturb the engine", voice="en+f3", seed=11)
    again = synth.load_synth_corpus(root=tmp_path, language="en", options=SMALL)
    first = _folder(corpus_root, "en")
    second = _folder(tmp_path, "en")
    assert first.name == second.name
    assert [u.id for u in again.utterances] == [u.id for u in corpora["en"].utterances]
    wavs = sorted(p.name for p in (first / "wav").iterdir())
    match, mismatch, errors = filecmp.cmpfiles(first / "wav", second / "wav", wavs, shallow=False)
    assert len(match) == len(wavs) and not mismatch and not errors
    assert (first / "manifest.jsonl").read_bytes() == (second / "manifest.jsonl").read_bytes()


def test_second_call_reads_the_cache(corpora: dict[str, Dataset], corpus_root: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(corpus_root, "fr")
    stamp = (folder / "manifest.jsonl").stat().st_mtime_ns
    ds = synth.load_synth_corpus(root=corpus_root, language="fr", options=SMALL)
    assert "generated" not in capsys.readouterr().err
    assert (folder / "manifest.jsonl").stat().st_mtime_ns == stamp
    assert [u.id for u in ds.utterances] == [u.id for u in corpora["fr"].utterances]


def test_folder_without_marker_is_regenerated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synth.load_synth_corpus(root=tmp_path, language="fi", options=SMALL)
    assert "generated fi corpus" in capsys.readouterr().err
    folder = _folder(tmp_path, "fi")
    meta = (folder / "meta.json").read_text()
    assert {"config", "counts", "total_audio_s", "bytes_on_disk", "generation_s"} <= set(json.loads(meta))
    (folder / synth.COMPLETE_MARKER).unlink()
    (folder / "manifest.jsonl").write_text("half written")
    ds = synth.load_synth_corpus(root=tmp_path, language="fi", options=SMALL)
    assert "generated fi corpus" in capsys.readouterr().err
    assert (folder / synth.COMPLETE_MARKER).is_file()
    assert len(ds.utterances) > 0
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_cache_folder_depends_on_the_config(tmp_path: Path) -> None:
    a = _folder(tmp_path, "en")
    b = synth.corpus_folder(root=tmp_path, language="en", spec=synth.validate_options({**SMALL, "seed": 3}))
    assert a != b and a.name.startswith("en-")


# --------------------------------------------------------------------------- validation and docs
def test_bad_options_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="speakers_per_language"):
        synth.load_synth_corpus(root=tmp_path, language="en", options={"speakers_per_language": 10})
    with pytest.raises(ConfigError, match="speakrs"):
        synth.load_synth_corpus(root=tmp_path, language="en", options={"speakrs": 3})
    with pytest.raises(BenchError, match="Did you mean 'fi'"):
        synth.load_synth_corpus(root=tmp_path, language="fin", options=SMALL)
    assert not list(tmp_path.iterdir())


def test_distributions_are_documented() -> None:
    for lang, (semantic, emotions) in EXPECTED_CLASSES.items():
        text = synth.describe_distributions(lang)
        assert all(f"| {e} |" in text for e in emotions)
        assert f"`{semantic}`" in text
        assert all(f"`{c}`" in text for c in synth.LANGUAGE_PROFILES[lang].semantic)
        for row in synth.profile_rows(lang):
            assert row in (synth.__doc__ or ""), f"module docstring is out of date: {row}"


# --------------------------------------------------------------------------- the tasks are learnable, not trivial
@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "fi", "fr"])
def test_pooled_mfcc_probe_separates_gender_and_part_of_emotion(
        language: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Default-size corpus; a linear probe on mean-pooled MFCCs: gender easy, emotion above chance, not solved."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from harness.data import load_audio
    from upstreams.mfcc import MFCCUpstream

    ds = synth.load_synth_corpus(root=tmp_path_factory.mktemp("synth_default"), language=language, options={})
    upstream = MFCCUpstream()
    with torch.no_grad():
        first_5s = {u.id: torch.from_numpy(load_audio(u.path, sample_rate=16000, max_duration_s=5.0))
                    for u in ds.utterances}
        pooled = {uid: upstream.features(wav).mean(0).numpy() for uid, wav in first_5s.items()}
    train, test = ds.split("train"), ds.split("test")

    def accuracy(label: str) -> float:
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
        probe.fit(np.stack([pooled[u.id] for u in train]), [u.labels[label] for u in train])
        predicted = probe.predict(np.stack([pooled[u.id] for u in test]))
        return float(np.mean(predicted == np.array([u.labels[label] for u in test])))

    chance = 1 / len(synth.LANGUAGE_PROFILES[language].emotions)
    assert accuracy("gender") > 0.9
    assert 1.5 * chance < accuracy("emotion") < 0.9
