"""Pydantic v2 schemas for every YAML edge: benchmark.yaml, tasks/, downstreams/, upstream cards.

Every model forbids unknown keys (``extra="forbid"``) so that a typo is an error, not a silently
ignored setting. Cross references (task exists, head registered, card args bind to the adapter)
are checked by :mod:`harness.config`, which reports all problems at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import Problem, did_you_mean

LANGUAGES = ("en", "fi", "fr")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- benchmark.yaml
class Paths(Strict):
    cache: str = ".bench/cache"
    results: str = ".bench/results"
    leaderboards: str = "leaderboards"
    user_cards: str = ".bench/cards"
    models: str = ".bench/models"


class CorpusSpec(Strict):
    """A real corpus: which dataset adapter reads it and from where."""

    adapter: str
    root: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    url: str = ""  # where the corpus can be obtained (shown when it is missing)


class SynthSpec(Strict):
    """Size of the embedded synthetic corpus (the generator's own knobs live in harness.synth)."""

    speakers_per_language: int = Field(24, ge=6)
    utterances_per_speaker: int = Field(16, ge=2)
    long_per_test_split: int = Field(4, ge=0)
    short_per_test_split: int = Field(4, ge=0)
    split_speakers: tuple[int, int, int] = (16, 4, 4)
    seed: int = 0

    @field_validator("split_speakers")
    @classmethod
    def _even(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(n % 2 for n in v):
            raise ValueError("each split needs an even number of speakers (half male, half female)")
        return v


class SmallModelSpec(Strict):
    """How the profile trains the four small BiLSTM models."""

    max_epochs: int = 100
    patience: int = 10
    batch_size: int = 256
    max_words: int | None = None  # cap on training word segments (None = all)
    teacher: str = "minilm"
    # LEE's losses: mse (the authors' code) or l1 (the paper's text, so the `paper` profile's choice)
    lee_loss: Literal["mse", "l1"] = "mse"
    # LEE trains every one of max_epochs (the authors' code, no early stopping), keeping the best dev epoch
    lee_full_epochs: bool = False


class AnalysisSpec(Strict):
    layer_sweep: bool = True
    capacity: bool = True
    capacity_fraction: float = Field(0.1, gt=0, le=1)
    capacity_tasks: list[str] = Field(default_factory=lambda: ["gender", "emotion", "intent", "topic", "request"])
    capacity_ig_steps: int = Field(50, ge=1)  # Integrated Gradients steps (the paper's code: 50)
    # retrainings of the 10% head per cell, seeds seed + 1000 r (r = 0 is the cell's seed; the paper's
    # code: one): the 10% score is their mean and its interval draws among them
    capacity_repeats: int = Field(1, ge=1)
    overlap: bool = True
    emotion_triplets: int | None = Field(None, ge=1)  # None: one triplet per test utterance as anchor
    inference_time: bool = True
    inference_time_language: str = "en"
    inference_time_task: str = "emotion"
    inference_time_warmup: int = Field(2, ge=0)  # untimed runs before the measured test loop
    inference_time_subset: int = Field(15, ge=1)  # size of the short (< 3 s) and long (> 15 s) subsets
    umap: bool = True


class FeatureSpec(Strict):
    """Where frame-level heads get their frames, and how long frames stay on disk.

    - ``source``: ``cache`` (frames read from the feature cache), ``stream`` (the upstream runs
      inside head training, batch by batch: the paper's protocol, no frame cache) or ``auto``
      (a planner decides per upstream and corpus: :mod:`harness.features.source`);
    - ``sweep_frames``: ``all`` (the cache holds every sweep-candidate layer's frames for the
      whole corpus) or ``bounded`` (the sweep reads candidate-layer frames of its training
      subset and dev only; the chosen layer's frames alone are then stored for every split);
    - ``evict_frames``: the matrix deletes frame entries of the bounded scheme once every cell
      reading them has finished (pooled vectors stay);
    - ``planner``: ``module:function`` deciding ``auto`` (see :mod:`harness.features.source`);
      unset, an (upstream, corpus) pair whose frame entries (as ``bench plan`` counts them, for
      every frame-level downstream of the profile reading the pair) exceed ``stream_above_gb`` is
      streamed. ``bench plan`` applies the same rule to the same bytes, so its ``mode`` column is
      the run's decision. With ``--disk-budget`` (and on Ray) the matrix plans first and hands its
      decisions to every job: without a planner the budget decides (a pair streams when its
      frames would pass the budget), with one the planner decides and the budget is checked; the
      record's ``source_reason`` names the rule and its numbers.

    With the profile's other settings: a layer mode (``layer: weighted_sum|mean``) on a frame head
    reads every layer, so ``bounded`` stores every layer's frames once in the chosen-frames entry,
    and ``stream`` refuses it with an error (the stream computes one layer per batch);
    ``normalize: utterance_layer_norm`` norms each utterance on its own, so every source gives
    it; pooled heads that read frames (a word-level upstream's word rows, pooled layer-normed
    frames) keep reading them from the main entry, which stores those layers in every scheme.
    """

    source: Literal["cache", "stream", "auto"] = "cache"
    sweep_frames: Literal["all", "bounded"] = "all"
    evict_frames: bool = False
    planner: str | None = None
    stream_above_gb: float = Field(100.0, gt=0)


class Profile(Strict):
    description: str = ""
    data: Literal["synth", "real"] = "synth"
    synth: SynthSpec = Field(default_factory=SynthSpec)
    upstreams: list[str]
    downstreams: list[str]
    languages: list[str] = Field(default_factory=lambda: list(LANGUAGES))
    upstream_languages: dict[str, list[str]] = Field(default_factory=dict)  # restrict some upstreams' languages
    upstream_downstreams: dict[str, list[str]] = Field(default_factory=dict)  # restrict some upstreams' downstreams
    seeds: list[int] = Field(default_factory=lambda: [0])
    analyses: AnalysisSpec = Field(default_factory=AnalysisSpec)
    small_models: SmallModelSpec = Field(default_factory=SmallModelSpec)
    device: str = "auto"  # auto | cpu | cuda
    workers: int | None = Field(None, ge=1)  # local processes for cells and small models (None: CPU cores)
    # padded audio seconds per extraction batch; None: 64 on a GPU, one utterance per forward on
    # CPU (batched forwards are slower there: see harness.features.extract.batch_seconds)
    extract_batch_s: float | None = Field(None, gt=0)
    language_fallback: Literal["english_model", "skip"] = "english_model"
    # SUPERB's layer modes for every downstream that trains a head and sweeps (`layer: sweep`):
    # weighted_sum (softmax weights over all layers, learned with the head) or mean (of all
    # layers). None: each downstream's own `layer`. See :func:`downstream_layer`.
    layer: Literal["weighted_sum", "mean"] | None = None
    # the profile this one mirrors: its downstream recipes (`profiles.<name>` in downstreams/*.yaml)
    # are used where the downstream has none for this profile, and the leaderboard shows its
    # single-layer scores beside this profile's (superb: embedded)
    baseline_profile: str | None = None
    # Settings where the paper's text is silent and its authors' code made a choice (the fidelity
    # audit's G4, G9; harness.config.deviations lists them). Each enters the cell key, and
    # extract_dtype the feature cache key, only when set away from its default, so results and
    # cache entries made before these settings existed stay valid.
    # How probe inputs are normalised: train_zscore (each dimension with the training split's
    # statistics), utterance_layer_norm (each utterance's frames of the layer over time x dims, no
    # affine: SpeechBrain's output_norm, what the authors' code did), none. A downstream's
    # `standardize: false` means none whatever this says.
    normalize: Literal["train_zscore", "utterance_layer_norm", "none"] = "train_zscore"
    # The upstream's forward on CUDA: card (bf16 autocast unless the card says `bf16: false`),
    # float32 (the authors' code: no autocast) or bf16. The cache stores float16 either way; on
    # CPU the forward is float32 whatever this says.
    extract_dtype: Literal["card", "float32", "bf16"] = "card"
    features: FeatureSpec = Field(default_factory=FeatureSpec)


class Benchmark(Strict):
    name: str = "speech-embedding-bench"
    paths: Paths = Field(default_factory=Paths)
    corpora: dict[str, CorpusSpec] = Field(default_factory=dict)
    default_profile: str = "embedded"
    profiles: dict[str, Profile]


# --------------------------------------------------------------------------- tasks/*.yaml
class TaskSource(Strict):
    """Where one language of a task comes from."""

    corpus: str = "synth"  # "synth" or a key of benchmark.yaml `corpora`
    classes: list[str] = Field(default_factory=list)
    label: str | None = None  # manifest field, when it differs from the task's label


MetricName = Literal["f1_micro", "uar", "accuracy", "f1_macro"]
DEFAULT_METRICS: tuple[MetricName, ...] = ("f1_micro", "uar", "accuracy")


class Task(Strict):
    description: str = ""
    version: int = 1
    kind: Literal["classification", "word_discrimination", "emotion_discrimination"]
    label: str  # manifest label field (gender, emotion, intent, ...)
    group: Literal["gender", "emotion", "semantic", "words"]
    paper_table: str | None = None  # key in reference/paper_tables.yaml
    # read by nothing, but part of the cell key (a task file's `metrics` is hashed): kept so that keys do not change
    metrics: list[MetricName] = Field(default_factory=lambda: list(DEFAULT_METRICS))
    sources: dict[Literal["synth", "real"], dict[str, TaskSource]]


# --------------------------------------------------------------------------- downstreams/*.yaml
class Training(Strict):
    optimizer: Literal["adam"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(32, ge=1)
    max_epochs: int = Field(30, ge=1)
    patience: int | None = Field(None, ge=1)  # early stopping on dev micro-F1; None = keep training
    grad_clip: float | None = None
    max_train_items: int | None = None


class SweepSpec(Strict):
    fraction: float = Field(0.3, gt=0, le=1)  # share of the training split used per layer
    stride: Literal["paper", "all"] | int = "paper"  # paper: every 2nd (base), every 3rd (large)
    seed: int = 0
    max_epochs: int | None = None  # default: the downstream's max_epochs


class Recipe(Strict):
    """The head and its training, overridable per profile and for word-level upstreams."""

    head_args: dict[str, Any] = Field(default_factory=dict)
    training: Training = Field(default_factory=Training)


class Downstream(Strict):
    description: str = ""
    task: str
    head: str | None = None  # required for classification tasks; discrimination tasks train nothing
    features: Literal["pooled", "frames"] = "pooled"
    pool_window_s: float | None = None  # pooled features: mean over the first N seconds (None = all)
    # The upstream sees only the first N seconds of each utterance (None = all of it): the authors'
    # code cut gender audio to 5 s before the model (fidelity audit G3). The features then come from
    # a cache entry of the cut audio. Enters the cell key only when set.
    input_window_s: float | None = Field(None, gt=0)
    # z-score each feature dimension with the training split's statistics before the head
    # (the probe then sees MFCC energies and transformer dimensions on one scale).
    standardize: bool = True
    # sweep (the paper), last, an index, or SUPERB's modes over every layer: weighted_sum, mean
    layer: Literal["sweep", "last", "weighted_sum", "mean"] | int = "sweep"
    layer_from: str | None = None  # use the layer chosen by this other downstream (same upstream, language)
    sweep: SweepSpec = Field(default_factory=SweepSpec)
    head_args: dict[str, Any] = Field(default_factory=dict)
    training: Training = Field(default_factory=Training)
    word_level: dict[str, Any] = Field(default_factory=dict)  # recipe overrides for small models
    options: dict[str, Any] = Field(default_factory=dict)  # kind-specific options (see the task kind's runner)
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)  # profile -> overrides

    def key_dump(self) -> dict[str, Any]:
        """The JSON dump that keys depend on: settings added after results were first keyed
        (:data:`ADDED_DOWNSTREAM_SETTINGS`) appear only when set away from their default."""
        dump = self.model_dump(mode="json")
        for name, default in ADDED_DOWNSTREAM_SETTINGS.items():
            if dump.get(name) == default:
                dump.pop(name, None)
        return dump


# Downstream settings added after the first results were keyed, with their defaults (see key_dump).
ADDED_DOWNSTREAM_SETTINGS: dict[str, Any] = {"input_window_s": None}
# Profile settings that enter the cell key when set away from their default (harness.config.plan.cell_key).
KEYED_PROFILE_SETTINGS: tuple[str, ...] = ("normalize", "extract_dtype")


def downstream_layer(downstream: Downstream, profile: Profile) -> str | int:
    """The ``layer`` setting a downstream runs with under ``profile``: the profile's layer mode
    replaces ``sweep`` for downstreams that train a head; fixed layers, ``last`` and ``layer_from``
    downstreams (which train nothing) keep their own."""
    if profile.layer is not None and downstream.layer == "sweep" and downstream.head is not None:
        return profile.layer
    return downstream.layer


# --------------------------------------------------------------------------- upstream cards
class CardMeta(Strict):
    display: str = ""
    family: str = ""
    group: Literal["baseline", "small", "base", "large", "large_asr_ft", "pretrained", "other"] = "other"
    params: float | None = None  # as published (for the leaderboard's "published" column)
    languages: list[str] = Field(default_factory=list)  # pretraining / fine-tuning languages
    paper_row: str | None = None  # key in reference/paper_tables.yaml `models`
    reference: str = ""
    weights: str = ""  # where the weights come from (URL or hub id), shown by `bench info`


class CardTest(Strict):
    """Hints for the upstream contract."""

    min_input_s: float = 0.5
    padding_invariant: bool = True
    padding_note: str = ""  # the reason when padding_invariant is false
    atol: float = 1e-3
    build: str | None = None  # test fixture builder "module:function" (tiny real-format checkpoint)


class Card(Strict):
    adapter: str
    args: dict[str, Any] = Field(default_factory=dict)
    revision: str = "none"
    bf16: bool = True  # on CUDA, extract under bf16 autocast (set false for models that lose accuracy)
    meta: CardMeta = Field(default_factory=CardMeta)
    test: CardTest = Field(default_factory=CardTest)


# --------------------------------------------------------------------------- reference/paper_layout.yaml
PAPER_LAYOUT_FILE = "reference/paper_layout.yaml"


class TaskLayout(Strict):
    abbr: str  # column headers: "Gen-En F1"
    group: str  # Table II's column group


class RowGroup(Strict):
    key: str
    label: str
    card_groups: list[str] = Field(default_factory=list)  # card ``meta.group`` values shown in this group
    paper_models: list[str] = Field(default_factory=list)  # the paper's rows of this group, in its order


class TableLayout(Strict):
    name: str  # file name without extension
    title: str


class TaskTableLayout(TableLayout):
    tasks: list[str]  # the classification tasks the table shows, in column order


class LayoutTables(Strict):
    gender: TaskTableLayout
    layers: TableLayout
    emotion: TaskTableLayout
    semantic: TaskTableLayout
    word_discrimination: TableLayout
    emotion_discrimination: TableLayout
    capacity: TableLayout
    inference_time: TableLayout
    extra_task: TableLayout  # "{task}" in name and title is the task's name

    def task_tables(self) -> tuple[TaskTableLayout, ...]:
        return (self.gender, self.emotion, self.semantic)


class PaperLayout(Strict):
    """``reference/paper_layout.yaml``: how the leaderboards lay out the paper's tables (the file's
    comments say what each key does). Cross references: :func:`paper_layout_problems`."""

    languages: dict[str, str]  # language -> abbreviation, in column order
    tasks: dict[str, TaskLayout]  # in column order
    layer_groups: list[str]
    row_groups: list[RowGroup]
    other_group: str
    controls_group: str
    tables: LayoutTables

    @property
    def paper_models(self) -> tuple[str, ...]:
        """The paper's rows in its order (the groups' ``paper_models`` one after the other)."""
        return tuple(m for g in self.row_groups for m in g.paper_models)


def paper_layout_problems(layout: PaperLayout, *, where: str) -> list[Problem]:
    """What the schema cannot check: names that must refer to each other, and uniqueness."""
    problems: list[Problem] = []
    groups = [g.key for g in layout.row_groups]
    card_groups = get_args(CardMeta.model_fields["group"].annotation)
    task_groups = {t.group for t in layout.tasks.values()}
    problems += _duplicates(groups, where=where, key="row_groups[].key")
    problems += _duplicates([m for g in layout.row_groups for m in g.paper_models], where=where,
                            key="row_groups[].paper_models")
    problems += _duplicates([c for g in layout.row_groups for c in g.card_groups], where=where,
                            key="row_groups[].card_groups")
    for key in ("other_group", "controls_group"):
        problems += _unknown(getattr(layout, key), groups, where=where, key=key, what="a row group key")
    for i, g in enumerate(layout.row_groups):
        for j, c in enumerate(g.card_groups):
            problems += _unknown(c, card_groups, where=where, key=f"row_groups[{i}].card_groups[{j}]",
                                 what="a card meta.group")
    for i, tg in enumerate(layout.layer_groups):
        problems += _unknown(tg, task_groups, where=where, key=f"layer_groups[{i}]", what="the group of a task")
    for name in ("gender", "emotion", "semantic"):
        table: TaskTableLayout = getattr(layout.tables, name)
        for i, task in enumerate(table.tasks):
            problems += _unknown(task, layout.tasks, where=where, key=f"tables.{name}.tasks[{i}]", what="a task of `tasks`")
    names = [getattr(layout.tables, f).name for f in LayoutTables.model_fields]
    problems += _duplicates(names, where=where, key="tables.*.name")
    for part in ("name", "title"):
        if "{task}" not in getattr(layout.tables.extra_task, part):
            problems.append(Problem(where, f"tables.extra_task.{part}", "text containing {task}",
                                    repr(getattr(layout.tables.extra_task, part))))
    return problems


def _unknown(name: str, known: Iterable[str], *, where: str, key: str, what: str) -> list[Problem]:
    known = sorted(set(known))
    if name in known:
        return []
    return [Problem(where, key, f"{what} ({', '.join(known)})", repr(name), did_you_mean(name, known))]


def _duplicates(names: Sequence[str], *, where: str, key: str) -> list[Problem]:
    twice = sorted({n for n in names if names.count(n) > 1})
    return [Problem(where, key, "unique names", f"{twice} more than once")] if twice else []
