"""Common Voice adapter on tiny locale folders of an older and a newer release, with real MP3 clips."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpora_fixtures import write_speech, write_text

from harness.corpora import commonvoice
from harness.data import load_audio
from harness.errors import DataError

OLD_COLUMNS = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accent", "locale", "segment"]
NEW_COLUMNS = ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes", "age",
               "gender", "accents", "variant", "locale", "segment"]
SENTENCES = ["bonjour à tous", "il fait beau", "merci beaucoup", "à demain", "c'est \"génial\"", "une deux trois"]
# speaker -> gender value in the old release, in the new release
SPEAKERS = {"a1": ("male", "male_masculine"), "b2": ("female", "female_feminine"),
            "c3": ("male", "male_masculine"), "d4": ("female", "female_feminine"),
            "e5": ("male", "male_masculine"), "f6": ("female", "female_feminine"),
            "g7": ("other", "non-binary"), "h8": ("", "do_not_wish_to_say")}


def tsv(columns: list[str], rows: list[dict[str, str]]) -> str:
    return "\n".join(["\t".join(columns)] + ["\t".join(r.get(c, "") for c in columns) for r in rows]) + "\n"


def rows(release: int) -> list[dict[str, str]]:
    out = []
    for i, (spk, genders) in enumerate(SPEAKERS.items()):
        for k in range(2):
            n = 2 * i + k
            out.append({"client_id": spk * 8, "path": f"common_voice_fr_{1000 + n}.mp3", "sentence": SENTENCES[n % 6],
                        "sentence_id": f"s{n}", "up_votes": "2", "down_votes": "0", "age": "twenties" if k else "",
                        "gender": genders[release], "locale": "fr"})
    return out


def build(root: Path, release: int) -> Path:
    folder = root / ("cv-corpus-5.1-2020-06-22" if release == 0 else "cv-corpus-17.0-2024-03-15") / "fr"
    columns = OLD_COLUMNS if release == 0 else NEW_COLUMNS
    all_rows = rows(release)
    for r in all_rows:
        write_speech(folder / "clips" / r["path"], r["sentence"], voice="fr+m2" if "male" in r["gender"] else "fr+f2")
    bad = "\t".join(["zz" * 8, "common_voice_fr_9.mp3", "too few fields"])
    escaping = dict(all_rows[0], path="../../../etc/passwd")
    write_text(folder / "validated.tsv", tsv(columns, all_rows + [escaping]).rstrip("\n") + "\n" + bad + "\n")
    write_text(folder / "train.tsv", tsv(columns, all_rows[:8]))
    write_text(folder / "dev.tsv", tsv(columns, all_rows[8:12]))
    write_text(folder / "test.tsv", tsv(columns, all_rows[12:]))
    if release == 1:  # newer releases ship clip durations (ms)
        write_text(folder / "clip_durations.tsv", "clip\tduration[ms]\n" + "".join(
            f"{r['path']}\t{1234 if r['path'].endswith('1000.mp3') else 1500}\n" for r in all_rows))
    return folder


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cv")
    return build(root, 0), build(root, 1)


SMALL = {"test_hours": 3.2 / 3600, "dev_hours": 3.2 / 3600}  # about one speaker (two clips) each


@pytest.mark.parametrize("release", [0, 1], ids=["old-gender-values", "new-gender-values"])
def test_gender_mapping_across_releases(releases, release: int) -> None:
    ds = commonvoice.load(root=releases[release], language="fr", options=SMALL)
    genders = {u.speaker[:2]: u.labels["gender"] for u in ds.utterances}
    assert genders == {"a1": "male", "b2": "female", "c3": "male", "d4": "female", "e5": "male", "f6": "female"}
    text = "\n".join(ds.skipped)
    dropped = ("'other'", "'(empty)'") if release == 0 else ("'non-binary'", "'do_not_wish_to_say'")
    assert all(f"2 row(s) with gender {v} dropped" in text for v in dropped), text
    assert "expected 10" in text or "expected 13" in text  # the short row, with its line number
    assert "validated.tsv:19" in text
    assert "outside the corpus root" in text
    assert len(ds.utterances) == 12


def test_carving_is_speaker_disjoint_deterministic_and_sized(releases) -> None:
    ds = commonvoice.load(root=releases[1], language="fr", options=SMALL)
    speakers = {s: {u.speaker for u in ds.split(s)} for s in ("train", "dev", "test")}
    assert all(speakers.values())
    assert not (speakers["train"] & speakers["dev"] or speakers["train"] & speakers["test"]
                or speakers["dev"] & speakers["test"])
    for split in ("dev", "test"):
        assert sum(u.duration_s for u in ds.split(split)) <= 3.2 * 1.05
    again = commonvoice.load(root=releases[1], language="fr", options=SMALL)
    assert [(u.id, u.split) for u in again.utterances] == [(u.id, u.split) for u in ds.utterances]
    salts = {tuple(sorted({u.speaker for u in commonvoice.load(root=releases[1], language="fr",
                                                                  options={**SMALL, "carve_salt": s}).split("test")}))
             for s in ("a", "b", "c", "d")}
    assert len(salts) > 1  # the salt changes the carving


def test_train_hours_cap_and_official_splits(releases) -> None:
    capped = commonvoice.load(root=releases[1], language="fr", options={**SMALL, "train_hours": 3.0 / 3600})
    assert len({u.speaker for u in capped.split("train")}) == 1
    assert any("beyond train_hours" in s for s in capped.skipped)
    official = commonvoice.load(root=releases[0], language="fr", options={"splits": "official"})
    assert [len(official.split(s)) for s in ("train", "dev", "test")] == [8, 4, 0]  # test.tsv: only dropped genders


def test_durations_from_clip_durations_tsv_or_header(releases) -> None:
    new = {u.id: u for u in commonvoice.load(root=releases[1], language="fr", options=SMALL).utterances}
    assert new["common_voice_fr_1000"].duration_s == pytest.approx(1.234)
    old = {u.id: u for u in commonvoice.load(root=releases[0], language="fr", options=SMALL).utterances}
    wav = load_audio(old["common_voice_fr_1000"].path, sample_rate=16000)  # MP3 decodes through soundfile
    assert abs(len(wav) / 16000 - old["common_voice_fr_1000"].duration_s) < 0.05
    assert old["common_voice_fr_1001"].labels == {"gender": "male", "age": "twenties"}
    assert old["common_voice_fr_1004"].text == 'c\'est "génial"'  # quotes are literal in these TSVs


def test_release_folder_and_missing_corpus(releases, tmp_path: Path) -> None:
    ds = commonvoice.load(root=releases[0].parent, language="fr", options=SMALL)  # the release folder
    assert len(ds.utterances) == 12
    with pytest.raises(DataError) as e:
        commonvoice.load(root=tmp_path, language="fr", options={})
    assert "clips" in str(e.value) and "commonvoice.mozilla.org" in str(e.value)
    (tmp_path / "clips").mkdir()
    with pytest.raises(DataError, match="validated.tsv"):
        commonvoice.load(root=tmp_path, language="fr", options={})
