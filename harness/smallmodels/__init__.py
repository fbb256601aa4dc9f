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

Choices where the paper is silent or ambiguous (each documented where it is made):

- Parameter counts (Table IX counts the whole training model): Siamese 146,432 (= the encoder,
  paper 146K), Audio word2vec 270,477 (270K: it needs H x H peephole MATRICES; a textbook diagonal
  peephole would give 221,709), Speech2vec 286,861 (287K: one decoder LSTM(13 + 128 -> 128) shared
  by both neighbours), LEE 880,283 with a 768-d teacher (910K: the paper's attention / projection
  layout is not described; ours is 3% smaller) and 683,291 with the default 384-d MiniLM teacher.
  The upstream is the encoder alone: 146,432 for all four.
- Decoders are teacher-forced with the previous frame (their 13-d inputs are what the counts
  imply) and start from the embedding; ``decoder_input="zeros"`` removes the teacher forcing.
- Input MFCCs are standardised per coefficient with training-set statistics stored in the
  encoder (raw c0 spans about +-100); decoders reconstruct standardised frames.
- LEE: MSE (the paper's code) by default rather than L1 (its text); the text teacher defaults to
  the offline all-MiniLM-L6-v2 (English vocabulary: weak semantics for fi / fr words); bert-base-
  uncased is used when its weights are available locally.
- All four models use early stopping (patience from the profile); the paper ran LEE for the
  full 100 epochs.
"""

from __future__ import annotations

MODELS = ("audio_word2vec", "speech2vec", "siamese", "lee")

# Table IX of the paper: parameters of the embedding models (their whole training models).
PAPER_PARAMS = {"audio_word2vec": 270_000, "speech2vec": 287_000, "siamese": 146_000, "lee": 910_000}

DISPLAY_NAMES = {"audio_word2vec": "Audio word2vec", "speech2vec": "Speech2vec", "siamese": "Siamese",
                 "lee": "LEE"}
