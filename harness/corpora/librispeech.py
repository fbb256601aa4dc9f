"""LibriSpeech (English; gender): read as distributed by OpenSLR (resource 12).

Layout (``root`` is the ``LibriSpeech`` folder the archives unpack to, or the folder above it)::

    SPEAKERS.TXT                       ;-comment lines, then  ID  |SEX| SUBSET |MINUTES| NAME
    <subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   "<utterance id> TRANSCRIPT" lines
    <subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac

Splits (the paper's): train = ``train-clean-360``, dev = ``dev-clean``, test = ``test-clean``;
each is a list of subset folders (options ``train_subsets`` ...). Label ``gender``: ``female``
/ ``male`` from SPEAKERS.TXT's F / M (a speaker missing there gets no gender label). Speaker =
the LibriSpeech speaker id; text = the transcript. Word alignments: option ``alignments``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data import Dataset, Utterance
from .alignments import aligned_words, alignment_options, open_alignments
from .common import Option, Skips, check_language, corpus_root, finish, missing, probe, read_options

URL = "https://www.openslr.org/12"
LAYOUT = """\
  <root>/SPEAKERS.TXT
  <root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
  <root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
  subsets by default: train-clean-360 (train), dev-clean (dev), test-clean (test);
  <root> is the LibriSpeech/ folder the archives unpack to (or the folder that holds it)"""

OPTIONS: dict[str, Option] = {
    "train_subsets": Option(["train-clean-360"], "strs", "subset folders read as the train split"),
    "dev_subsets": Option(["dev-clean"], "strs", "subset folders read as the dev split"),
    "test_subsets": Option(["test-clean"], "strs", "subset folders read as the test split"),
    **alignment_options(),
}
SEX = {"F": "female", "M": "male"}


def load(*, root: str | Path, language: str = "en", options: dict[str, Any] | None = None) -> Dataset:
    """LibriSpeech as a Dataset (see the module docstring for the layout and the splits)."""
    opts = read_options(options, OPTIONS, adapter="librispeech")
    check_language("librispeech", language, ("en",))
    base = _base(corpus_root(root, corpus="librispeech", layout=LAYOUT, url=URL))
    skips = Skips()
    speakers_file = base / "SPEAKERS.TXT"
    if not speakers_file.is_file():
        raise missing("SPEAKERS.TXT (speaker sex)", speakers_file, corpus="librispeech", layout=LAYOUT, url=URL)
    sexes = read_speakers(speakers_file, skips)
    index = open_alignments(base, opts, skips)
    utterances: list[Utterance] = []
    for split in ("train", "dev", "test"):
        for subset in opts[f"{split}_subsets"]:
            folder = base / subset
            if not folder.is_dir():
                raise missing(f"the subset folder {subset!r} ({split} split)", folder,
                              corpus="librispeech", layout=LAYOUT, url=URL)
            utterances += _read_subset(folder, split=split, sexes=sexes, index=index, skips=skips)
    return finish(name="librispeech", language=language, root=base, utterances=utterances, skips=skips)


def _base(root: Path) -> Path:
    """``root`` itself, or ``root/LibriSpeech`` when the archives were unpacked into ``root``."""
    if not (root / "SPEAKERS.TXT").is_file() and (root / "LibriSpeech" / "SPEAKERS.TXT").is_file():
        return root / "LibriSpeech"
    return root


def read_speakers(path: Path, skips: Skips) -> dict[str, str]:
    """Speaker id -> ``female`` / ``male`` from SPEAKERS.TXT; malformed lines are recorded and skipped.

    The NAME field may itself contain ``|`` (e.g. speaker 60), so a line splits into at most 5 fields.
    """
    sexes: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        fields = [f.strip() for f in line.split("|", 4)]
        if len(fields) < 3 or not fields[0].isdigit() or fields[1].upper() not in SEX:
            skips.add(f"{path}:{number}", f"not a 'ID | SEX | SUBSET | MINUTES | NAME' line: {line.strip()[:80]!r}",
                      kind="bad SPEAKERS.TXT line")
            continue
        sexes[fields[0]] = SEX[fields[1].upper()]
    return sexes


def _read_subset(folder: Path, *, split: str, sexes: dict[str, str], index: Any, skips: Skips) -> list[Utterance]:
    out: list[Utterance] = []
    for chapter in sorted(p for p in folder.glob("*/*") if p.is_dir()):
        speaker = chapter.parent.name
        transcripts = _read_transcripts(chapter, skips)
        for utt_id, text in transcripts.items():
            if not utt_id.startswith(f"{speaker}-{chapter.name}-"):
                skips.add(f"{chapter}/{utt_id}", f"utterance id does not belong to folder {speaker}/{chapter.name}",
                          kind="misplaced utterance")
                continue
            audio = chapter / f"{utt_id}.flac"
            duration = probe(audio, utt_id, skips)
            if duration is None:
                continue
            labels = {"gender": sexes[speaker]} if speaker in sexes else {}
            words = aligned_words(index, utt_id, duration_s=duration, skips=skips)
            out.append(Utterance(id=utt_id, path=str(audio), split=split, language="en", speaker=speaker,
                                 labels=labels, text=text, words=words, duration_s=duration))
        for flac in sorted(chapter.glob("*.flac")):
            if flac.stem not in transcripts:
                skips.add(str(flac), "no line in the chapter's .trans.txt", kind="audio without transcript")
    return out


def _read_transcripts(chapter: Path, skips: Skips) -> dict[str, str]:
    trans = chapter / f"{chapter.parent.name}-{chapter.name}.trans.txt"
    if not trans.is_file():
        skips.add(str(chapter), f"no transcript file {trans.name}; the chapter is skipped", kind="missing transcript")
        return {}
    out: dict[str, str] = {}
    for number, line in enumerate(trans.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        utt_id, _, text = line.strip().partition(" ")
        if not text:
            skips.add(f"{trans}:{number}", "expected '<utterance id> <transcript>'", kind="bad transcript line")
            continue
        out[utt_id] = text
    return out
