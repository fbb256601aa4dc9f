"""CaFE, the Canadian French Emotional speech dataset (French; emotion): read as distributed on Zenodo.

Layout (``root`` is the unpacked release: ``CaFE_48k`` with WAV files, or the 192 kHz release's
``CaFE_192k_1`` / ``CaFE_192k_2`` parts with AIFF files; FLAC also accepted)::

    <Emotion>/<Intensity>/<AA>-<E>-<I>-<S>.<wav|aiff|flac>   e.g. Colère/Faible/01-C-1-1.wav
    Neutre/<AA>-N-<S>.<wav|aiff|flac>                        neutral: no intensity folder or field

File name fields (the release's Readme.txt): AA actor 01-12 (odd = man, even = woman); E
emotion C = Colère (anger), D = Dégoût (disgust), J = Joie (happiness), N = Neutre (neutral),
P = Peur (fear), S = Surprise (surprise), T = Tristesse (sadness); I intensity 1 = Faible (low),
2 = Fort (high); S sentence 1-6. 12 actors x 6 sentences x (6 emotions x 2 intensities + neutral)
= 936 files. Neutral files with an intensity field (``01-N-1-3``) or inside an intensity folder
are accepted as well (neutral gets no intensity label).

Labels come from the file name: ``emotion`` (the seven English names above), ```intensity``
(``low`` / ``high``; none for neutral) and ``gender`` from the actor number. Folder names, when
they name an emotion or an intensity (accents and case ignored, as archives made on macOS store
decomposed names), must agree with the file name; a disagreement skips the file with a reason.
Text = the sentence (French).

Splits are speaker-held-out: ``test_actors`` (default 11 and 12, one man and one woman) and
``dev_actors`` (default 09 and 10); the other eight actors train. When several versions of the
release lie under ``root``, the first file of each name in path order is kept (point ``root`` at
one version).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..data import Dataset, Utterance
from ..errors import ConfigError, DataError, Problem
from .alignments import aligned_words, alignment_options, open_alignments
from .common import Option, Skips, check_language, corpus_root, finish, fold, probe, read_options

URL = "https://zenodo.org/record/1478765 (CaFE, CC BY-NC-SA 4.0)"
LAYOUT = """\
  <root>/<Émotion>/<Faible|Fort>/<AA>-<E>-<I>-<S>.wav   (e.g. Colère/Faible/01-C-1-1.wav; .aiff/.flac too)
  <root>/Neutre/<AA>-N-<S>.wav
  <root> is the unpacked release (CaFE_48k/, or the folder holding CaFE_192k_1/ and CaFE_192k_2/)"""

OPTIONS: dict[str, Option] = {
    "test_actors": Option(["11", "12"], "strs", "actor numbers (01-12) of the test split"),
    "dev_actors": Option(["09", "10"], "strs", "actor numbers (01-12) of the dev split"),
    **alignment_options(),
}
EMOTIONS = {"C": "anger", "D": "disgust", "J": "happiness", "N": "neutral", "P": "fear", "S": "surprise",
            "T": "sadness"}
EMOTION_FOLDERS = {"colere": "C", "degout": "D", "joie": "J", "neutre": "N", "peur": "P", "surprise": "S",
                   "tristesse": "T"}
INTENSITIES = {"1": "low", "2": "high"}
INTENSITY_FOLDERS = {"faible": "1", "fort": "2"}
SENTENCES = {
    "1": "Un cheval fou dans mon jardin",
    "2": "Deux ânes aigris au pelage brun",
    "3": "Trois cygnes aveugles au bord du lac",
    "4": "Quatre vieilles truies éléphantesques",
    "5": "Cinq pumas fiers et passionnés",
    "6": "Six ours aimants domestiqués",
}
SUFFIXES = (".wav", ".aiff", ".aif", ".flac")
_NAME = re.compile(r"^(\d{2})-([A-Za-z])-(\d)(?:-(\d))?$")


def load(*, root: str | Path, language: str = "fr", options: dict[str, Any] | None = None) -> Dataset:
    """CaFE as a Dataset (layout, labels and speaker-held-out splits: module docstring)."""
    opts = read_options(options, OPTIONS, adapter="cafe")
    check_language("cafe", language, ("fr",))
    test, dev = _actors(opts["test_actors"], "test_actors"), _actors(opts["dev_actors"], "dev_actors")
    if test & dev:
        raise ConfigError([Problem("corpus adapter 'cafe'", "options.dev_actors", "actors not in test_actors",
                                   f"{sorted(test & dev)} in both")])
    base = corpus_root(root, corpus="cafe", layout=LAYOUT, url=URL)
    skips = Skips()
    index = open_alignments(base, opts, skips)
    files = sorted(p for p in base.rglob("*") if p.suffix.lower() in SUFFIXES and not p.name.startswith("._"))
    if not files:
        raise DataError(f"cafe: no audio files (.wav/.aiff/.flac) under {str(base)!r}.\n"
                        f"Expected layout:\n{LAYOUT}\nObtain the corpus from: {URL}")
    utterances = []
    for path in files:
        u = _utterance(path, base=base, test=test, dev=dev, index=index, skips=skips)
        if u is not None:
            utterances.append(u)
    return finish(name="cafe", language=language, root=base, utterances=utterances, skips=skips)


def _actors(values: list[str], key: str) -> set[str]:
    bad = [v for v in values if not (v.isdigit() and 1 <= int(v) <= 12)]
    if bad:
        raise ConfigError([Problem("corpus adapter 'cafe'", f"options.{key}", "actor numbers 1-12", repr(bad))])
    return {f"{int(v):02d}" for v in values}


def parse_name(stem: str) -> dict[str, str] | str:
    """Fields of a CaFE file name (actor, emotion letter, intensity or "", sentence), or why it is not one."""
    m = _NAME.match(stem)
    if m is None:
        return "name is not <actor>-<emotion>-<intensity>-<sentence> (or <actor>-N-<sentence>)"
    actor, letter, third, fourth = m.group(1), m.group(2).upper(), m.group(3), m.group(4)
    intensity, sentence = (third, fourth) if fourth is not None else ("", third)
    if letter not in EMOTIONS:
        return f"emotion letter {letter!r} is not one of {''.join(EMOTIONS)}"
    if not 1 <= int(actor) <= 12:
        return f"actor {actor} is not 01-12"
    if sentence not in SENTENCES:
        return f"sentence {sentence} is not 1-6"
    if letter != "N" and intensity not in INTENSITIES:
        return f"emotion {EMOTIONS[letter]} needs an intensity 1 or 2"
    if intensity and intensity not in INTENSITIES:
        return f"intensity {intensity} is not 1 or 2"
    return {"actor": actor, "letter": letter, "intensity": intensity, "sentence": sentence}


def _folder_conflict(path: Path, base: Path, fields: dict[str, str]) -> str:
    """Why the folders above ``path`` contradict its name ("" when they agree or say nothing)."""
    for folder in path.relative_to(base).parts[:-1]:
        name = fold(folder)
        letter = EMOTION_FOLDERS.get(name)
        if letter is not None and letter != fields["letter"]:
            return f"folder {folder!r} says {EMOTIONS[letter]} but the name says {EMOTIONS[fields['letter']]}"
        level = INTENSITY_FOLDERS.get(name)
        if level is not None and fields["intensity"] and level != fields["intensity"]:
            return f"folder {folder!r} says intensity {level} but the name says {fields['intensity'] or 'none'}"
    return ""


def _utterance(path: Path, *, base: Path, test: set[str], dev: set[str], index: Any, skips: Skips) -> Utterance | None:
    fields = parse_name(path.stem)
    if isinstance(fields, str):
        skips.add(str(path), fields, kind="bad file name")
        return None
    conflict = _folder_conflict(path, base, fields)
    if conflict:
        skips.add(str(path), conflict, kind="folder and name disagree")
        return None
    duration = probe(path, str(path), skips)
    if duration is None:
        return None
    actor = fields["actor"]
    labels = {"emotion": EMOTIONS[fields["letter"]], "gender": "male" if int(actor) % 2 else "female"}
    if fields["letter"] != "N":
        labels["intensity"] = INTENSITIES[fields["intensity"]]
    split = "test" if actor in test else "dev" if actor in dev else "train"
    return Utterance(id=path.stem, path=str(path), split=split, language="fr", speaker=actor, labels=labels,
                     text=SENTENCES[fields["sentence"]],
                     words=aligned_words(index, path.stem, duration_s=duration, skips=skips), duration_s=duration)
