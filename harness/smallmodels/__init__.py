"""The four small-scale word-embedding models of the paper (Section V-A), trained by the harness.

Audio word2vec, Speech2vec, Siamese and LEE share one encoder: a one-layer bidirectional LSTM
(128 units per direction) over 13-dimensional MFCC frames of one word segment (cut or zero-padded
to 80 frames); the 128-d embedding is the sum of the final forward and backward hidden states.
They differ only in the training objective.

Modules (each imported on demand; importing this package imports nothing heavy):

- :mod:`.segments`: word segments cut from alignments, their mfcc13 frames, the in-memory /
  on-disk segment bank used by training.
- :mod:`.models`: the encoder, the peephole LSTM cell and the four training models.
- :mod:`.teacher`: the LEE text teacher (all-MiniLM-L6-v2 offline by default, or BERT).
- :mod:`.train`: :func:`~.train.train_small_model` writes a checkpoint and an upstream card.
- :mod:`.word_discrimination`: the word-discrimination triplets and accuracy (Table V).
- :mod:`.umap_plot`: UMAP scatter plots of word embeddings (Figures 1-3).
- :mod:`.testing`: a small espeak corpus builder for tests and demonstrations.
"""

from __future__ import annotations

MODELS = ("audio_word2vec", "speech2vec", "siamese", "lee")

# Table IX of the paper: parameters of the embedding models (their whole training models).
PAPER_PARAMS = {"audio_word2vec": 270_000, "speech2vec": 287_000, "siamese": 146_000, "lee": 910_000}

DISPLAY_NAMES = {"audio_word2vec": "Audio word2vec", "speech2vec": "Speech2vec", "siamese": "Siamese",
                 "lee": "LEE"}
