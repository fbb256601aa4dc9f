"""The four small BiLSTM word-embedding models (Audio word2vec, Speech2vec, Siamese, LEE) as upstreams.

Granularity ``"word"``: the harness feeds one word segment per batch row (cut from the word
alignments with :func:`harness.smallmodels.segments.word_segments`) and the adapter returns one
128-d embedding per row (T' = 1). An utterance becomes the sequence of its word embeddings; that
assembly is the extraction step's job (paper Section VIII-A).

Per row: mfcc13 of the row's valid samples (25 ms / 10 ms, 13 coefficients, no deltas), cut or
zero-padded to 80 frames, packed through the trained encoder. Rows never see each other
(padding / batch invariant).

Checkpoint: ``checkpoint`` when given, else ``<models_dir>/<model>/<language>/<recipe>/model.pt``
(:func:`harness.smallmodels.checkpoint.checkpoint_path`): the harness injects ``models_dir`` and
the run's ``language``, and puts the key of the profile's training recipe in the card's args as
``recipe`` (:mod:`harness.config.small_models`), so a cell reads the model its profile trains and no
other. Without ``recipe`` (a direct call, ``bench info``) the model's only checkpoint for the
language is used; several are an error that lists them. A checkpoint from before recipes
(``<models_dir>/<model>/<language>/model.pt``) is never read. ``random_init=True`` (the ``@random``
card suffix) builds the encoder with seeded random weights and needs no checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harness.errors import BenchError, WeightsMissingError
from harness.identity import file_digest
from harness.smallmodels.checkpoint import (
    MIN_SEGMENT_SAMPLES,
    MODELS,
    checkpoint_path,
    encoder_from_checkpoint,
    encoder_inputs,
    encoder_parameter_counts,
    legacy_checkpoint_path,
    load_checkpoint,
    random_encoder,
    trained_languages,
    trained_recipes,
)

from .base import ArchInfo, Upstream, UpstreamOutput


class WordLSTMUpstream(Upstream):
    granularity = "word"
    sample_rate = 16000
    num_layers = 1
    hidden_size = 128
    downsample_rate = 160  # hop of the MFCC frames it reads; its output is one vector per word
    min_input_samples = MIN_SEGMENT_SAMPLES

    def __init__(self, *, model: str, checkpoint: str | None = None, language: str | None = None,
                 models_dir: str | None = None, recipe: str | None = None, random_init: bool = False,
                 seed: int = 0):
        super().__init__()
        if model not in MODELS:
            raise BenchError(f"lstm upstream: unknown small model {model!r}; known: {list(MODELS)}")
        self.model_name = model
        if random_init:
            self.encoder, config = random_encoder(model, seed=seed)
            self.checkpoint_path: Path | None = None
            self.checkpoint_info: dict[str, object] = {"random_init": True, "seed": seed}
        else:
            self.checkpoint_path = resolve_checkpoint(model=model, checkpoint=checkpoint, language=language,
                                                      models_dir=models_dir, recipe=recipe)
            ckpt = load_checkpoint(self.checkpoint_path)
            if ckpt.get("model") != model:
                raise BenchError(f"{self.checkpoint_path} holds a {ckpt.get('model')!r} model, not {model!r}")
            self.encoder, config = encoder_from_checkpoint(ckpt)
            self.checkpoint_info = {k: ckpt.get(k) for k in ("language", "teacher", "best_epoch", "epochs", "seed",
                                                             "recipe_key")}
        self.max_frames = config.max_frames
        self.hidden_size = config.hidden_size

    @classmethod
    def describe(cls, *, model: str, checkpoint: str | None = None, language: str | None = None,
                 models_dir: str | None = None, recipe: str | None = None, random_init: bool = False,
                 seed: int = 0) -> ArchInfo:
        """Parameters from the architecture alone; weights: the trained checkpoint of ``language``,
        or (no language given, as in ``bench info``) the languages it has been trained for."""
        if model not in MODELS:
            raise BenchError(f"lstm upstream: unknown small model {model!r}; known: {list(MODELS)}")
        counts = encoder_parameter_counts(model)
        train = f"bench train-upstream --model {model} --language LANG"
        if random_init:
            present, where, source = None, "", "none (random init)"
        elif checkpoint is not None or language is not None:
            try:
                present, where = True, str(resolve_checkpoint(model=model, checkpoint=checkpoint, language=language,
                                                              models_dir=models_dir, recipe=recipe))
            except BenchError as e:  # missing, or several recipes and none asked for
                present, where = False, str(e)
            source = f"trained by the harness ({train})"
        else:
            trained = trained_languages(models_dir or ".", model)
            present = bool(trained)
            where = ("; ".join(f"{Path(models_dir or '.') / model / lang}/{{{','.join(keys)}}}/model.pt"
                               for lang, keys in trained.items()) if trained else f"not trained yet: {train}")
            source = f"trained by the harness ({train})"
        return ArchInfo(params=counts["encoder"], num_layers=1, hidden_size=128, downsample_rate=160,
                        granularity="word", weights_source=source, weights_present=present, weights_location=where,
                        extra={"params_full_model": counts["full"]},
                        notes=("params: the encoder used as upstream; params_full_model adds the training "
                               "decoders / heads" + (" (with the default MiniLM 384-d teacher)" if model == "lee"
                                                     else ""),))

    @classmethod
    def cache_identity(cls, *, model: str, checkpoint: str | None = None, language: str | None = None,
                       models_dir: str | None = None, recipe: str | None = None, random_init: bool = False,
                       seed: int = 0) -> dict[str, object]:
        """What the features depend on beyond the card (whose args hold the recipe key): the trained
        checkpoint's content digest, so that a retrained model never reads the features (or
        results) of the previous one."""
        if random_init:
            return {"random_init": True, "seed": seed}
        try:
            path = resolve_checkpoint(model=model, checkpoint=checkpoint, language=language, models_dir=models_dir,
                                      recipe=recipe)
        except BenchError:  # missing, or several recipes and none asked for: building it says which
            return {"checkpoint": None}
        return {"checkpoint_digest": file_digest(path)}

    def forward(self, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> UpstreamOutput:
        """[B, T] word segments, [B] valid samples -> layers=([B, 1, 128],), lengths=ones [B]."""
        lengths = lengths_B.tolist()
        short = [n for n in lengths if n < self.min_input_samples]
        if short:
            raise ValueError(f"word segment of {short[0]} samples is shorter than one "
                             f"{self.min_input_samples}-sample MFCC window")
        x_BTF, frames_B = encoder_inputs([wavs_BT[i, :n].detach().float().cpu() for i, n in enumerate(lengths)],
                                         max_frames=self.max_frames)
        device = next(self.encoder.parameters()).device
        embedding_BH = self.encoder.embed(x_BTF.to(device), frames_B)
        return UpstreamOutput(layers=(embedding_BH.unsqueeze(1),),
                              lengths=torch.ones(len(lengths), dtype=torch.long, device=device))


def resolve_checkpoint(*, model: str, checkpoint: str | None, language: str | None, models_dir: str | None,
                       recipe: str | None = None) -> Path:
    """The checkpoint file to load (see the module docstring); a clear error naming the training
    command when it is missing."""
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise WeightsMissingError(f"lstm upstream {model!r}: checkpoint {path} does not exist. Train it with "
                                      f"`bench train-upstream --model {model} --language {language or 'en'}`.")
        return path
    if language is None or models_dir is None:
        raise WeightsMissingError(f"lstm upstream {model!r} needs a checkpoint, or a language and models_dir to "
                                  "find the trained one (the harness passes both when it builds the upstream)")
    train = f"bench train-upstream --model {model} --language {language}"
    legacy = legacy_checkpoint_path(models_dir, model, language)
    old = (f" ({legacy} was trained before checkpoints were kept per recipe; its recipe is not known to match, "
           "so it is not used: retrain, then delete it)") if legacy.is_file() else ""
    if recipe is not None:
        path = checkpoint_path(models_dir, model, language, recipe)
        if not path.is_file():
            others = [k for k in trained_recipes(models_dir, model, language) if k != recipe]
            other = f"; trained for other recipes only: {', '.join(others)}" if others else ""
            raise WeightsMissingError(f"no trained {model!r} model for language {language!r} with this profile's "
                                      f"recipe {recipe} at {path}{other}{old}: run `{train} --profile <the run's "
                                      "profile>` first (`bench matrix` trains it itself)")
        return path
    keys = trained_recipes(models_dir, model, language)
    if not keys:
        raise WeightsMissingError(f"no trained {model!r} model for language {language!r} under "
                                  f"{Path(models_dir) / model / language}{old}: run `{train}` first")
    if len(keys) > 1:
        raise BenchError(f"lstm upstream {model!r} ({language}): {len(keys)} trained recipes ({', '.join(keys)}) "
                         "and none chosen; give the card arg `recipe` (a key of "
                         f"{Path(models_dir) / model / language}) or `checkpoint`, or run it through a profile")
    return checkpoint_path(models_dir, model, language, keys[0])
