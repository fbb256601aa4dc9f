"""Train a small model on a corpus's word segments; write its checkpoint and an upstream card.

:func:`train_small_model` is the library call behind ``bench train-upstream``:

1. word segments of the TRAIN split (training) and the DEV split (early stopping) are cut from
   the alignments and turned into mfcc13 frames (:func:`~.segments.segment_bank`, cached);
2. the model trains with Adam (lr 1e-3), StepLR(step 10, gamma 0.5), batches of 256, gradient
   clipping at norm 1.0, up to ``max_epochs`` epochs, stopping after ``patience`` epochs without a
   lower dev loss; the weights of the best dev epoch are kept (paper protocol; the authors' code
   ran LEE for the full 100 epochs: ``small_models.lee_full_epochs``, set in profile ``paper``;
   LEE's loss is ``small_models.lee_loss``: mse as the code, l1 as the text and profile ``paper``);
3. ``<models>/<model>/<language>/<recipe>/model.pt`` is written atomically (``<recipe>``: the key
   of the training recipe, :mod:`harness.config.small_models`): a plain dict (config, encoder and full state dicts,
   teacher, vocabulary stats, loss curves, parameter counts, dataset fingerprint, the recipe and
   its key, timings) loadable with ``torch.load(weights_only=True)``;
4. ``<user_cards>/<model>_<language>_<recipe>.yaml`` (adapter ``lstm``) makes it an upstream.

What each model trains on (per epoch, shuffled with the seed):

- Audio word2vec, LEE: every word segment (LEE: with its word's text-teacher vector);
- Speech2vec: every segment with at least one neighbour (previous / next word of the same
  utterance); a missing neighbour contributes no loss;
- Siamese: every segment whose word occurs at least twice, with a positive (another occurrence of
  the same word) and a negative (a random segment of another word) drawn anew each epoch.
  Dev triplets are drawn once (fixed seed), so dev losses are comparable across epochs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config.small_models import (
    PROFILE_SEED,
    dataset_identity,
    recipe_key,
    recipe_of,
    training_source,
)
from ..errors import BenchError, DataError
from ..faults import maybe_crash
from . import DISPLAY_NAMES, MODELS, PAPER_PARAMS
from .checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    card_path,
    checkpoint_path,
    save_checkpoint,
    write_card,
)
from .segments import MAX_FRAMES, SegmentBank, pad_to_frames, segment_bank

if TYPE_CHECKING:
    import torch

    from ..config import Workspace
    from ..data import Dataset
    from ..schema import SmallModelSpec
    from .models import SmallModel

LEARNING_RATE = 1e-3
LR_STEP_EPOCHS = 10
LR_GAMMA = 0.5
GRAD_CLIP_NORM = 1.0


# --------------------------------------------------------------------------- batches
class BatchMaker:
    """Turns segment indices of a bank into the batch dict a model's ``loss`` expects."""

    def __init__(self, model: str, bank: SegmentBank, *, text_vectors: dict[str, np.ndarray] | None = None,
                 max_frames: int = MAX_FRAMES):
        if model not in MODELS:
            raise BenchError(f"unknown small model {model!r}; known: {list(MODELS)}")
        self.model, self.bank, self.max_frames = model, bank, max_frames
        self.text_vectors = text_vectors
        self.prev, self.next = bank.neighbours()
        occurrences = bank.occurrences()
        self.same_word = [occurrences[w] for w in bank.words]
        if model == "lee" and text_vectors is None:
            raise BenchError("LEE batches need the text teacher's word vectors")

    def items(self) -> np.ndarray:
        """Indices that can be a training example for this model (see the module docstring)."""
        n = len(self.bank)
        if self.model == "speech2vec":
            return np.flatnonzero((self.prev >= 0) | (self.next >= 0))
        if self.model == "siamese":
            if len(set(self.bank.words)) < 2:
                return np.zeros(0, dtype=np.int64)
            return np.array([i for i in range(n) if len(self.same_word[i]) >= 2], dtype=np.int64)
        return np.arange(n)

    def _frames(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return self.bank.batch(indices.tolist(), max_frames=self.max_frames)

    def _optional_frames(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames of ``indices`` where >= 0; rows with -1 get zeros and length 0 (no loss)."""
        import torch

        frames = [torch.from_numpy(self.bank.frames(int(i))) if i >= 0 else torch.zeros(0, self.bank.frames_flat.shape[1])
                  for i in indices]
        x, lengths = pad_to_frames(frames, max_frames=self.max_frames)
        lengths[torch.from_numpy(indices < 0)] = 0
        return x, lengths

    def triplet_partners(self, anchors: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A positive (another occurrence of the anchor's word) and a random negative (another word)."""
        positives, negatives = [], []
        n = len(self.bank)
        for a in anchors.tolist():
            others = [j for j in self.same_word[a] if j != a]
            positives.append(others[int(rng.integers(len(others)))])
            while True:
                j = int(rng.integers(n))
                if self.bank.words[j] != self.bank.words[a]:
                    negatives.append(j)
                    break
        return np.array(positives, dtype=np.int64), np.array(negatives, dtype=np.int64)

    def batch(self, indices: np.ndarray, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        import torch

        x, x_len = self._frames(indices)
        out = {"x": x, "x_len": x_len}
        if self.model == "speech2vec":
            out["prev"], out["prev_len"] = self._optional_frames(self.prev[indices])
            out["next"], out["next_len"] = self._optional_frames(self.next[indices])
        elif self.model == "siamese":
            pos, neg = self.triplet_partners(indices, rng)
            out["pos"], out["pos_len"] = self._frames(pos)
            out["neg"], out["neg_len"] = self._frames(neg)
        elif self.model == "lee":
            vectors = self.text_vectors or {}
            out["text"] = torch.from_numpy(np.stack([vectors[self.bank.words[i]] for i in indices.tolist()]))
        return out

    def epoch_batches(self, *, batch_size: int, rng: np.random.Generator,
                      shuffle: bool = True, bucket: int = 8) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of the items; when shuffling, items are bucketed by length (pools of ``bucket``
        batches sorted by frames, batch order shuffled): the encoder runs only to each batch's
        longest word, about half of the 80-frame maximum on average."""
        items = self.items()
        if not shuffle:
            for start in range(0, len(items), batch_size):
                yield self.batch(items[start : start + batch_size], rng)
            return
        order = rng.permutation(items)
        frames = np.minimum(self.bank.lengths, self.max_frames)
        batches = []
        pool = batch_size * bucket
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(frames[chunk], kind="stable")]
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        for b in rng.permutation(len(batches)):
            yield self.batch(batches[b], rng)


# --------------------------------------------------------------------------- the training loop
@dataclass
class FitResult:
    """What :func:`fit` returns: the model holds the best dev epoch's weights."""

    model: SmallModel
    epochs: int
    best_epoch: int
    best_dev_loss: float
    train_loss: list[float] = field(default_factory=list)
    dev_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0  # wall clock
    cpu_seconds: float = 0.0  # CPU time of this process (tells a busy machine from a slow model)


def evaluate_loss(model: SmallModel, batches: list[dict[str, torch.Tensor]]) -> float:
    """Mean loss over ``batches`` weighted by batch size, in eval mode, without gradients."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for b in batches:
            n = int(b["x"].shape[0])
            total += float(model.loss(b)["loss"]) * n
            count += n
    return total / max(count, 1)


def train_step(model: SmallModel, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> float:
    """One optimisation step (gradient norm clipped at 1.0); returns the batch loss."""
    import torch

    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = model.loss(batch)["loss"]
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
    optimizer.step()
    return float(loss.detach())


def fit(model: SmallModel, train: BatchMaker, dev: BatchMaker, *, max_epochs: int = 100, patience: int | None = 10,
        batch_size: int = 256, seed: int = 0, progress: bool = True, description: str = "training",
        num_threads: int | None = 1) -> FitResult:
    """Train with the paper's recipe; keep the weights of the epoch with the lowest dev loss.

    ``num_threads``: torch intra-op threads while training (restored afterwards; None = leave as
    is). These small, sequential LSTM steps gain little from threads, and on a busy 2-core machine
    two threads made a training step about 20 times SLOWER than one (spinning workers), so the
    default is 1.
    """
    with torch_threads(num_threads):
        return _fit(model, train, dev, max_epochs=max_epochs, patience=patience, batch_size=batch_size, seed=seed,
                    progress=progress, description=description)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number."""
    import torch

    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _fit(model: SmallModel, train: BatchMaker, dev: BatchMaker, *, max_epochs: int, patience: int | None,
         batch_size: int, seed: int, progress: bool, description: str) -> FitResult:
    import copy

    import torch

    if len(train.items()) == 0:
        raise DataError(f"{description}: the training split has no usable word segments for {train.model}")
    if len(dev.items()) == 0:
        raise DataError(f"{description}: the dev split has no usable word segments for {dev.model} "
                        "(early stopping needs one; Siamese needs dev words that occur at least twice)")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev_batches = list(dev.epoch_batches(batch_size=batch_size, rng=np.random.default_rng(seed + 1), shuffle=False))
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=LR_STEP_EPOCHS, gamma=LR_GAMMA)
    n_batches = -(-len(train.items()) // batch_size)
    result = FitResult(model=model, epochs=0, best_epoch=0, best_dev_loss=float("inf"))
    best_state = copy.deepcopy(model.state_dict())
    started, started_cpu = time.perf_counter(), time.process_time()
    with _Progress(enabled=progress, description=description, epochs=max_epochs, batches=n_batches) as bar:
        for epoch in range(1, max_epochs + 1):
            losses = []
            for batch in train.epoch_batches(batch_size=batch_size, rng=rng):
                losses.append(train_step(model, optimizer, batch))
                bar.batch_done()
            scheduler.step()
            dev_loss = evaluate_loss(model, dev_batches)
            result.train_loss.append(float(np.mean(losses)))
            result.dev_loss.append(dev_loss)
            result.epochs = epoch
            if dev_loss < result.best_dev_loss:
                result.best_dev_loss, result.best_epoch = dev_loss, epoch
                best_state = copy.deepcopy(model.state_dict())
            bar.epoch_done(f"train {result.train_loss[-1]:.4f}  dev {dev_loss:.4f}  best {result.best_dev_loss:.4f} "
                           f"@{result.best_epoch}")
            maybe_crash("small_model")
            if patience is not None and epoch - result.best_epoch >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = time.process_time() - started_cpu
    return result


class _Progress:
    """A rich epoch bar plus a transient batch bar; does nothing when disabled."""

    def __init__(self, *, enabled: bool, description: str, epochs: int, batches: int):
        self.enabled, self.description, self.epochs, self.batches = enabled, description, epochs, batches

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("{task.fields[status]}"))
            self.progress.__enter__()
            self.epoch_task = self.progress.add_task(self.description, total=self.epochs, status="")
            self.batch_task = self.progress.add_task("  batches", total=self.batches, status="")
        return self

    def batch_done(self) -> None:
        if self.enabled:
            self.progress.advance(self.batch_task)

    def epoch_done(self, status: str) -> None:
        if self.enabled:
            self.progress.update(self.epoch_task, advance=1, status=status)
            self.progress.reset(self.batch_task)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.__exit__(None, None, None)


# --------------------------------------------------------------------------- checkpoints and cards
@dataclass(frozen=True)
class TrainedModel:
    """A trained small model: where its checkpoint and card are, and how training went."""

    model: str
    language: str
    recipe: str  # the recipe's key (harness.config.small_models)
    checkpoint: Path
    card: Path
    epochs: int
    best_epoch: int
    best_dev_loss: float
    training_seconds: float
    training_cpu_seconds: float
    params: dict[str, int]
    teacher: str | None
    vocabulary: dict[str, dict[str, int]]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["checkpoint"], out["card"] = str(self.checkpoint), str(self.card)
        return out


def _plain_state(module: Any) -> dict[str, Any]:
    return {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------- the library call
def load_training_dataset(workspace: Workspace, language: str) -> Dataset:
    """The embedded synthetic corpus of ``language`` with the default profile's size."""
    from ..synth import load_synth_corpus  # type: ignore[import-not-found,unused-ignore]

    _, profile = workspace.profile()
    return load_synth_corpus(root=workspace.path("cache") / "corpora" / "synth", language=language,
                             options=profile.synth.model_dump())


def cap_bank(bank: SegmentBank, *, max_words: int | None, seed: int) -> SegmentBank:
    """At most ``max_words`` segments, drawn with the seed (order kept); the bank itself when no cap."""
    if max_words is None or len(bank) <= max_words:
        return bank
    keep = np.sort(np.random.default_rng(seed).choice(len(bank), size=max_words, replace=False))
    return bank.subset(keep.tolist())


def train_small_model(*, workspace: Workspace, model: str, language: str, dataset: Dataset | None = None,
                      spec: SmallModelSpec | None = None, seed: int = 0, progress: bool = True,
                      config_overrides: dict[str, Any] | None = None, num_threads: int | None = 1,
                      dataset_ident: dict[str, Any] | None = None) -> TrainedModel:
    """Train ``model`` on ``dataset`` (default: the synthetic corpus of ``language``); write checkpoint and card.

    ``spec`` defaults to the default profile's ``small_models``; ``config_overrides`` sets
    :class:`~.models.SmallModelConfig` fields (e.g. ``{"lee_loss": "l1"}``). The checkpoint goes
    to its recipe's folder (:mod:`harness.config.small_models`: ``spec``, the dataset, ``seed``, ``config_overrides``);
    ``dataset_ident`` is the dataset's part of the recipe (:func:`train_for_profile` passes the
    profile's, :func:`harness.config.small_models.dataset_identity`; default: the dataset's name, language and
    fingerprint).
    """
    from .models import SmallModelConfig, parameter_counts

    if model not in MODELS:
        raise BenchError(f"unknown small model {model!r}; known: {list(MODELS)}")
    if spec is None:
        spec = workspace.profile()[1].small_models
    if dataset is None:
        dataset = load_training_dataset(workspace, language)
    if dataset_ident is None:
        dataset_ident = {"name": dataset.name, "language": dataset.language, "fingerprint": dataset.fingerprint}
    recipe = recipe_of(model=model, spec=spec, dataset=dataset_ident, seed=seed, overrides=config_overrides)
    key = recipe_key(recipe)
    cache_dir = workspace.path("cache") / "smallmodels" / "segments"
    train_bank = cap_bank(segment_bank(dataset, "train", cache_dir=cache_dir, progress=progress),
                          max_words=spec.max_words, seed=seed)
    dev_bank = segment_bank(dataset, "dev", cache_dir=cache_dir, progress=progress)
    text_vectors, teacher = None, None
    overrides = dict(config_overrides or {})
    patience: int | None = spec.patience
    if model == "lee":
        overrides.setdefault("lee_loss", spec.lee_loss)
        patience = None if spec.lee_full_epochs else patience
        from .teacher import cached_word_vectors

        teacher = spec.teacher
        text_vectors = cached_word_vectors(train_bank.words + dev_bank.words, teacher=teacher,
                                           cache_dir=workspace.path("models") / "_teachers")
        overrides["text_dim"] = int(next(iter(text_vectors.values())).shape[0])
    config = SmallModelConfig(model=model, **overrides)
    net = build_seeded_model(config, seed=seed)
    set_normalisation_from(net, train_bank)
    result = fit(net, BatchMaker(model, train_bank, text_vectors=text_vectors, max_frames=config.max_frames),
                 BatchMaker(model, dev_bank, text_vectors=text_vectors, max_frames=config.max_frames),
                 max_epochs=spec.max_epochs, patience=patience, batch_size=spec.batch_size, seed=seed,
                 progress=progress, description=f"{DISPLAY_NAMES[model]} ({language})", num_threads=num_threads)
    params = {**parameter_counts(net), "paper": PAPER_PARAMS[model]}
    vocabulary = {"train": train_bank.vocabulary_stats(), "dev": dev_bank.vocabulary_stats(),
                  "train_skipped": dict(train_bank.skipped)}
    ckpt = save_checkpoint(checkpoint_path(workspace.path("models"), model, language, key), {
        "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "model": model, "language": language,
        "config": config.to_dict(), "encoder_state_dict": _plain_state(net.encoder),
        "model_state_dict": _plain_state(net), "teacher": teacher, "vocabulary": vocabulary,
        "epochs": result.epochs, "best_epoch": result.best_epoch, "best_dev_loss": result.best_dev_loss,
        "dev_loss": result.dev_loss, "train_loss": result.train_loss, "params": params,
        "dataset": {"name": dataset.name, "language": dataset.language, "fingerprint": dataset.fingerprint},
        "seed": seed, "spec": spec.model_dump(mode="json"), "recipe": recipe, "recipe_key": key,
        "training_seconds": result.seconds,
        "training_cpu_seconds": result.cpu_seconds,
        "created": datetime.now(UTC).isoformat(timespec="seconds"), "torch_version": _torch_version(),
    })
    card = write_card(card_path(workspace.path("user_cards"), model, language, key), model=model, language=language,
                      checkpoint=ckpt, encoder_params=params["encoder"], dataset_name=dataset.name, recipe=key)
    return TrainedModel(model=model, language=language, recipe=key, checkpoint=ckpt, card=card, epochs=result.epochs,
                        best_epoch=result.best_epoch, best_dev_loss=result.best_dev_loss,
                        training_seconds=result.seconds, training_cpu_seconds=result.cpu_seconds, params=params,
                        teacher=teacher, vocabulary=vocabulary)


def build_seeded_model(config: Any, *, seed: int) -> SmallModel:
    """Build the model right after seeding torch, so that its initial weights depend only on ``seed``."""
    import torch

    from .models import build_model

    torch.manual_seed(seed)
    return build_model(config)


def set_normalisation_from(model: SmallModel, bank: SegmentBank) -> None:
    """Standardise the encoder's input with the per-coefficient mean and std of ``bank``'s frames."""
    import torch

    frames = bank.frames_flat.astype(np.float64)
    model.encoder.set_normalisation(torch.from_numpy(frames.mean(0)).float(), torch.from_numpy(frames.std(0)).float())


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


# --------------------------------------------------------------------------- profile and CLI
def training_corpus(workspace: Workspace, *, profile: str | None, language: str) -> Dataset:
    """The corpus the small models of ``language`` train on in ``profile``: the word-discrimination
    task's corpus (LibriSpeech / Lahjoita Puhetta / Common Voice in the paper, the synthetic corpus
    in the embedded profiles)."""
    from ..corpora.load import for_task, load_task_dataset

    _, prof = workspace.profile(profile)
    source = training_source(workspace, prof, language)
    # Lahjoita Puhetta: the 360 h subset (option task_subsets)
    return for_task(load_task_dataset(workspace, prof, source, language), "small_models")


def train_for_profile(workspace: Workspace, *, profile: str | None, model: str, language: str,
                      seed: int = PROFILE_SEED, progress: bool = True) -> dict[str, Any]:
    """Train ``model`` for ``language`` with the profile's ``small_models`` settings (the matrix's
    stage 1), into the folder of the profile's recipe (:func:`.recipe.profile_checkpoint`)."""
    _, prof = workspace.profile(profile)
    dataset = training_corpus(workspace, profile=profile, language=language)
    ident = dataset_identity(workspace, prof, training_source(workspace, prof, language), language)
    trained = train_small_model(workspace=workspace, model=model, language=language, dataset=dataset,
                                spec=prof.small_models, seed=seed, progress=progress, dataset_ident=ident)
    return trained.as_dict()
