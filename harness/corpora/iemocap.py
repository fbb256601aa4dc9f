"""IEMOCAP (English; emotion): read as distributed by USC SAIL (``IEMOCAP_full_release``).

Layout (``root`` is ``IEMOCAP_full_release`` or the folder above it)::

    Session<k>/sentences/wav/<dialog>/<utterance>.wav
    Session<k>/dialog/EmoEvaluation/<dialog>.txt      turn lines + annotator lines (C-… / A-…)
    Session<k>/dialog/transcriptions/<dialog>.txt     optional: "<utterance> [start-end]: text"

An EmoEvaluation turn line is ``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5, 2.5, 2.5]``;
the blocks of ``C-`` (categorical) and ``A-`` (attribute) annotator lines and ``%`` comment lines
are ignored. Labels (the paper's four classes): ``neu`` -> neutral, ``sad`` -> sadness, ``hap``
-> happiness, ``ang`` -> anger. ``exc`` (excited) -> happiness when ``merge_excited`` is true,
the DEFAULT, as in SUPERB's emotion task and most IEMOCAP 4-class work (without it happiness has
about 600 items against ~1100-1700 for the others). Every other label (fru, sur, fea, dis, oth,
xxx) is skipped and counted in ``Dataset.skipped``.

Speaker: the session plus the gender letter *before the 3-digit index* of the utterance id
(``Ses01F_impro01_M003`` -> ``Ses01M``: the letter after ``Ses01`` only says who wore the motion
capture markers). The same letter gives the label ``gender``.

Splits: sessions in ``test_sessions`` (default 5) are the test split (the paper's). The dev split
is carved from the training sessions by holding out whole speakers, ``dev_speakers`` (default
``Ses04F``: one of eight training speakers, about 12 % of the training data), so that model
selection never sees the test set (the paper's code selected on it) and dev is speaker-disjoint
like test. The remaining speakers are the train split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data import Dataset, Utterance
from ..errors import ConfigError, Problem
from .alignments import aligned_words, alignment_options, open_alignments
from .common import Option, Skips, check_language, corpus_root, finish, missing, probe, read_options

URL = "https://sail.usc.edu/iemocap/iemocap_release.htm"
LAYOUT = """\
  <root>/Session<k>/sentences/wav/<dialog>/<utterance>.wav        (k = 1..5)
  <root>/Session<k>/dialog/EmoEvaluation/<dialog>.txt
  <root>/Session<k>/dialog/transcriptions/<dialog>.txt            (optional, for text)
  <root> is IEMOCAP_full_release/ (or the folder that holds it)"""

OPTIONS: dict[str, Option] = {
    "merge_excited": Option(True, "bool", "map 'exc' (excited) to happiness, as SUPERB and most 4-class work do"),
    "test_sessions": Option(["5"], "strs", "session numbers of the test split"),
    "dev_speakers": Option(["Ses04F"], "strs", "speakers (Ses<nn><F|M>) held out of training as the dev split"),
    **alignment_options(),
}
EMOTIONS = {"neu": "neutral", "sad": "sadness", "hap": "happiness", "ang": "anger"}
CLASSES = ("neutral", "sadness", "happiness", "anger")
SESSIONS = (1, 2, 3, 4, 5)

_TURN = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)\s+\[.*\]\s*$")
_UTTERANCE = re.compile(r"^Ses(\d{2})[FM]_\S+_([FM])\d{3}$")
_TRANSCRIPT = re.compile(r"^(\S+)\s+\[[\d.]+-[\d.]+\]:\s?(.*)$")


def load(*, root: str | Path, language: str = "en", options: dict[str, Any] | None = None) -> Dataset:
    """IEMOCAP's four-class emotion data as a Dataset (layout and splits: module docstring)."""
    opts = read_options(options, OPTIONS, adapter="iemocap")
    check_language("iemocap", language, ("en",))
    test_sessions = {int(s) for s in _session_numbers(opts["test_sessions"])}
    dev_speakers = _dev_speakers(opts["dev_speakers"], test_sessions)
    base = _base(corpus_root(root, corpus="iemocap", layout=LAYOUT, url=URL))
    skips = Skips()
    index = open_alignments(base, opts, skips)
    utterances: list[Utterance] = []
    for session in SESSIONS:
        folder = base / f"Session{session}"
        labels_dir = folder / "dialog" / "EmoEvaluation"
        if not labels_dir.is_dir():
            raise missing(f"the Session{session} emotion labels", labels_dir, corpus="iemocap", layout=LAYOUT, url=URL)
        for label_file in sorted(labels_dir.glob("*.txt")):
            if label_file.name.startswith("._"):  # macOS resource forks found in some copies
                continue
            texts = _read_transcripts(folder / "dialog" / "transcriptions" / label_file.name)
            for utt_id, code, item in read_emo_evaluation(label_file, skips):
                u = _utterance(utt_id, code, item, session=session, folder=folder, opts=opts, texts=texts,
                               test_sessions=test_sessions, dev_speakers=dev_speakers, index=index, skips=skips)
                if u is not None:
                    utterances.append(u)
    return finish(name="iemocap", language=language, root=base, utterances=utterances, skips=skips)


def _base(root: Path) -> Path:
    nested = root / "IEMOCAP_full_release"
    return nested if not (root / "Session1").is_dir() and (nested / "Session1").is_dir() else root


def _session_numbers(values: list[str]) -> list[str]:
    bad = [v for v in values if not (v.isdigit() and int(v) in SESSIONS)]
    if bad:
        raise ConfigError([Problem("corpus adapter 'iemocap'", "options.test_sessions",
                                   "session numbers 1-5", repr(bad))])
    return values


def _dev_speakers(values: list[str], test_sessions: set[int]) -> set[str]:
    problems = []
    for v in values:
        m = re.fullmatch(r"Ses0([1-5])[FM]", v)
        if m is None:
            problems.append(Problem("corpus adapter 'iemocap'", "options.dev_speakers",
                                    "speakers like 'Ses04F' (session + F/M)", repr(v)))
        elif int(m.group(1)) in test_sessions:
            problems.append(Problem("corpus adapter 'iemocap'", "options.dev_speakers",
                                    "a speaker of a training session", f"{v!r}, who is in a test session",
                                    "Model selection must not see the test set."))
    if problems:
        raise ConfigError(problems)
    return set(values)


def read_emo_evaluation(path: Path, skips: Skips) -> list[tuple[str, str, str]]:
    """(utterance id, emotion code, "file:line") for each turn line of an EmoEvaluation file.

    Annotator lines (``C-…``, ``A-…``), ``%`` comments and blank lines are ignored; any other line
    is recorded in ``skips`` as malformed.
    """
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("%", "C-", "A-")):
            continue
        m = _TURN.match(stripped)
        if m is None:
            skips.add(f"{path}:{number}", f"not an EmoEvaluation turn line: {stripped[:80]!r}",
                      kind="bad EmoEvaluation line")
            continue
        out.append((m.group(3), m.group(4).lower(), f"{path}:{number}"))
    return out


def _utterance(utt_id: str, code: str, item: str, *, session: int, folder: Path, opts: dict[str, Any],
               texts: dict[str, str], test_sessions: set[int], dev_speakers: set[str], index: Any,
               skips: Skips) -> Utterance | None:
    m = _UTTERANCE.match(utt_id)
    if m is None or int(m.group(1)) != session:
        skips.add(item, f"utterance id {utt_id!r} is not Ses{session:02d}<F|M>_<dialog>_<F|M><nnn>",
                  kind="bad utterance id")
        return None
    emotion = EMOTIONS.get(code) or ("happiness" if code == "exc" and opts["merge_excited"] else None)
    if emotion is None:
        skips.add(utt_id, f"emotion {code!r} is not one of the four classes; skipped", kind=f"emotion {code}")
        return None
    speaker = f"Ses{m.group(1)}{m.group(2)}"
    dialog = utt_id.rsplit("_", 1)[0]
    audio = folder / "sentences" / "wav" / dialog / f"{utt_id}.wav"
    duration = probe(audio, utt_id, skips)
    if duration is None:
        return None
    split = "test" if session in test_sessions else "dev" if speaker in dev_speakers else "train"
    return Utterance(id=utt_id, path=str(audio), split=split, language="en", speaker=speaker,
                     labels={"emotion": emotion, "gender": "female" if m.group(2) == "F" else "male"},
                     text=texts.get(utt_id, ""), words=aligned_words(index, utt_id, duration_s=duration, skips=skips),
                     duration_s=duration)


def _read_transcripts(path: Path) -> dict[str, str]:
    """Utterance id -> text from a dialog transcription file (empty when the file is absent)."""
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _TRANSCRIPT.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


# --------------------------------------------------------------------------- writing the layout
# Used by the tests' fixture trees and by benchmarks/peer_s3prl.py, which writes the synthetic corpus
# in this layout for s3prl's own IEMOCAP preprocessing; :func:`load` reads it back.
EMO_EVALUATION_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"


@dataclass(frozen=True)
class Turn:
    """One turn of a dialog: utterance id (``Ses01F_impro01_F000``), emotion code (``neu``, ``exc``, ...),
    transcript text and duration in seconds (for the turn's time stamps)."""

    utterance: str
    code: str
    text: str = ""
    duration_s: float = 1.5


def emo_evaluation_block(start_s: float, end_s: float, utterance: str, code: str) -> str:
    """One turn block as IEMOCAP writes it: the turn line, then categorical and attribute annotator lines."""
    return (f"[{start_s:.4f} - {end_s:.4f}]\t{utterance}\t{code}\t[2.5000, 2.5000, 2.5000]\n"
            "C-E1:\tNeutral;\t()\nC-E2:\tNeutral; Frustration;\t()\nC-F1:\tNeutral;\t()\n"
            "A-E1:\tval 3; act 2; dom  2;\t()\nA-F1:\tval 2; act 3; dom  3;\t(calm)\n\n")


def write_dialog(session_dir: Path, dialog: str, turns: Sequence[Turn], *, start_s: float = 1.0, gap_s: float = 0.5,
                 extra_label_lines: str = "", extra_transcript_lines: str = "") -> None:
    """Write ``dialog``'s EmoEvaluation and transcription files under ``session_dir`` (``.../Session<k>``).

    Turns follow each other with ``gap_s`` of silence from ``start_s``. The audio files
    (``sentences/wav/<dialog>/<utterance>.wav``) are the caller's to write. ``extra_*_lines`` are
    appended verbatim (tests use them for malformed lines).
    """
    labels, transcript, t = EMO_EVALUATION_HEADER, "", start_s
    for turn in turns:
        end = t + turn.duration_s
        labels += emo_evaluation_block(t, end, turn.utterance, turn.code)
        transcript += f"{turn.utterance} [{t:08.4f}-{end:08.4f}]: {turn.text}\n"
        t = end + gap_s
    for sub, text in (("EmoEvaluation", labels + extra_label_lines),
                      ("transcriptions", transcript + extra_transcript_lines)):
        path = session_dir / "dialog" / sub / f"{dialog}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
