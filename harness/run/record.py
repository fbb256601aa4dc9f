"""The result of one matrix cell as a typed record: :class:`CellResult` (schema version 2).

One record per cell, written by the cell runner and read by the leaderboards and the matrix
through attribute access, so no reader keeps a table of paths into a JSON file. Failed and
unavailable cells are records too: ``status`` says which, ``error`` or ``reason`` says why, and
the sections a failed cell never reached are None.

On disk a record is the JSON of :meth:`CellResult.to_json`: the fields that were set, in
declaration order, with ``"schema_version": 2`` first. Version-1 files (``"schema": 1``, written
before this module) are read by :func:`parse_result` / :func:`read_result` through a converter
that is lenient where those files were: a section of the wrong shape reads as absent (the old
leaderboard's rule, "a missing path reads as not there") and missing identity fields read as
empty. Version 2 is strict: every model forbids unknown keys, and a file that does not validate is
an error naming the file and the keys.

Sections (each a frozen model; every field optional unless the record cannot exist without it,
since the kinds of cell fill different subsets):

- ``cell`` (:class:`CellId`), ``upstream`` (:class:`UpstreamInfo`), ``task`` (:class:`TaskInfo`),
  ``downstream`` (:class:`DownstreamIdentity`): what ran;
- ``metrics`` / ``dev_metrics`` / ``utterance_metrics`` (:class:`Metrics`), ``predictions``
  (:class:`Predictions`), ``layer`` (:class:`LayerChoice`), ``training`` (:class:`TrainingSummary`):
  what the probe did;
- ``data`` (:class:`DataSummary`), ``features`` (:class:`FeaturesInfo`), ``timings``
  (:class:`Timings`), ``environment`` (:class:`Environment`);
- ``analyses`` (:class:`Analyses`: ``capacity``, ``inference_time``, ``umap``) and
  ``word_discrimination`` (:class:`WordDiscrimination`), written by the analysis steps;
- ``deviations`` (:class:`~harness.config.deviations.Deviation` rows): where the cell's profile
  departs from the paper, as its settings said when the cell ran (absent in older files, which
  stay readable: the schema version did not change).
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from ..config.deviations import Deviation
from ..errors import BenchError

SCHEMA_VERSION: Literal[2] = 2
V1_SCHEMA = 1  # the ``"schema"`` value of files written before CellResult
Status = Literal["ok", "failed", "unavailable"]


class ResultFileError(BenchError):
    """A result file that claims a schema version this harness cannot read, or does not match it."""


class Section(BaseModel):
    """Base of every part of a record: frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- what ran
class CellId(Section):
    """The matrix coordinates of the cell; ``task`` is absent when the cell failed before planning."""

    profile: str
    upstream: str
    downstream: str
    language: str
    seed: int
    task: str | None = None


class UpstreamInfo(Section):
    """The card that ran (``name``, possibly a language variant) and the one the profile lists."""

    name: str | None = None
    listed: str | None = None
    display: str | None = None
    group: str | None = None
    family: str | None = None
    paper_row: str | None = None
    params_published: float | None = None
    random_init: bool | None = None
    languages: list[str] | None = None
    language_fallback: bool | None = None  # True: no model for this language, the English one ran
    granularity: str | None = None
    revision: str | None = None
    note: str | None = None  # e.g. what NAME@random means for an adapter without weights
    settings: dict[str, Any] | None = None  # recorded adapter settings (e.g. Whisper's window)


class TaskInfo(Section):
    name: str | None = None
    kind: str | None = None
    label: str | None = None
    group: str | None = None
    version: int | None = None
    corpus: str | None = None
    paper_table: str | None = None


class DownstreamIdentity(Section):
    """The resolved downstream. ``config``, ``head_args`` and ``training`` are dumps of the
    downstream's own validated config models (harness.schema), kept as data: re-declaring them
    here would make every config change break the reading of older results."""

    name: str | None = None
    config: dict[str, Any] | None = None
    head: str | None = None
    head_args: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    profile: str | None = None
    word_level: bool | None = None


class ErrorInfo(Section):
    type: str | None = None
    message: str | None = None
    traceback: str | None = None


# --------------------------------------------------------------------------- what the probe did
class Metrics(Section):
    """Scores in percent (``harness.metrics.classification_metrics``; accuracy and ``n`` only for
    the discrimination tasks)."""

    f1_micro: float | None = None
    uar: float | None = None
    accuracy: float | None = None
    f1_macro: float | None = None
    confusion_matrix: list[list[int]] | None = None
    n: int | None = None


class Predictions(Section):
    """Per test item: labels and predictions, or (discrimination) per-triplet correctness flags.

    ``speakers``: the speaker of each item (a triplet: its anchor's), the clusters of the
    leaderboard's speaker-clustered bootstrap (:mod:`harness.stats`); absent in results written
    before it was recorded, or when the corpus does not name every item's speaker (the tables then
    fall back to the item bootstrap and say so). ``ids``: item ids; a word item is
    ``<utterance id>#<k>``, so the bootstrap resamples utterances with their words."""

    ids: list[str] | None = None
    y_true: list[int] | None = None
    y_pred: list[int] | None = None
    correct: list[int] | None = None
    speakers: list[str] | None = None


class LayerChoice(Section):
    """The layer the probe read and how it was chosen; ``curve`` maps a layer (as text) to its dev
    score when a sweep ran. ``rule`` is the word-discrimination downstream's ``layer`` setting
    verbatim (a word or an index) for those cells.

    Layer modes (SUPERB): ``mode`` is ``weighted_sum`` or ``mean``, ``chosen`` is None (the head
    read every layer) and ``weights`` holds the weight of each layer (index = layer, summing to
    1): the softmax of the logits learned with the head, or 1/L for ``mean``. ``weights_plot``
    is the figure of the weights, drawn beside the sweep curve of ``curve_from`` (the profile's
    ``baseline_profile`` sweep of the same upstream, downstream and language) when that exists.
    Files written before these fields read them as None."""

    chosen: int | None = None
    rule: str | int | None = None
    num_layers: int | None = None
    curve: dict[str, float] | None = None
    candidates: list[int] | None = None
    subset_size: int | None = None
    metric: str | None = None
    plot: str | None = None
    from_language: str | None = None
    layer_from: str | None = None
    mode: Literal["weighted_sum", "mean"] | None = None
    weights: list[float] | None = None
    weights_plot: str | None = None
    curve_from: str | None = None
    tie_rule: str | None = None  # how the sweep decides between layers whose dev scores are close
    curve_low: dict[str, float] | None = None  # per layer: the dev score's 95% interval (harness.stats)
    curve_high: dict[str, float] | None = None
    dev_ids: list[str] | None = None  # the dev items the curve was scored on ...
    dev_speakers: list[str] | None = None  # ... their speakers (absent when not every one is named)
    dev_y_true: list[int] | None = None
    dev_predictions: dict[str, list[int]] | None = None  # per layer: the sweep head's dev predictions


class EpochRecord(Section):
    epoch: int
    train_loss: float | None = None
    dev_f1: float | None = None


class TrainingSummary(Section):
    best_epoch: int | None = None
    epochs_run: int | None = None
    best_dev_f1: float | None = None
    stopped_early: bool | None = None
    history: list[EpochRecord] | None = None
    seconds: float | None = None
    head_params: int | None = None


# --------------------------------------------------------------------------- data, features, time, machine
class DataSummary(Section):
    """What the cell read. Classification cells count per split (``utterances``, ``label_counts``
    by split); emotion-discrimination cells describe their one split (counts as plain numbers)."""

    corpus: str | None = None
    fingerprint: str | None = None
    split: str | None = None
    items: dict[str, int] | None = None
    utterances: dict[str, int] | int | None = None
    label_counts: dict[str, dict[str, int]] | dict[str, int] | None = None
    skipped: int | None = None
    skipped_by_stage: dict[str, int] | None = None
    skipped_examples: list[str] | None = None
    item_level: str | None = None
    not_anchors_single_emotion: int | None = None
    triplet_rule: str | None = None
    seed: int | None = None
    split_rules: list[str] | None = None  # how the adapter made splits the corpus does not ship (e.g. a carved dev)


class FeaturesInfo(Section):
    cache_entry: str | None = None
    bytes_on_disk: int | None = None
    extract_seconds: float | None = None
    audio_seconds: float | None = None
    upstream_forward_calls: int | None = None
    num_layers: int | None = None
    hidden_size: int | None = None
    frame_rate_hz: float | None = None
    pooling: str | None = None
    layer: int | None = None
    word_vectors: str | None = None  # word discrimination: "computed in this cell" / "read from the cache"
    cache: str | None = None
    # frame-level heads (issue 17): where the frames came from. source: "cache" (read from the feature
    # cache) or "stream" (the upstream ran inside head training); frame_scheme: "all" (every candidate
    # layer cached), "bounded" (sweep subset + chosen layer) or "stream"; absent in older records
    source: Literal["cache", "stream"] | None = None
    source_reason: str | None = None
    frame_scheme: Literal["all", "bounded", "stream"] | None = None
    frame_entries: dict[str, int] | None = None  # derived cache entries read (bounded scheme) -> bytes
    stream_forward_calls: int | None = None
    stream_seconds: float | None = None


class Timings(Section):
    """Wall-clock seconds of the cell's stages; ``<step>_s`` for each analysis step that ran."""

    total_s: float | None = None
    data_s: float | None = None
    features_s: float | None = None
    layer_selection_s: float | None = None
    train_s: float | None = None
    score_s: float | None = None
    capacity_s: float | None = None
    inference_time_s: float | None = None
    word_discrimination_s: float | None = None


class Environment(Section):
    python: str | None = None
    platform: str | None = None
    machine: str | None = None
    cpu_count: int | None = None
    packages: dict[str, str] | None = None
    device: str | None = None
    torch_threads: int | None = None
    device_name: str | None = None


# --------------------------------------------------------------------------- analysis sections
class IntegratedGradientsInfo(Section):
    n_steps: int | None = None
    baseline: str | None = None
    target: str | None = None
    multiply_by_inputs: bool | None = None
    items: int | None = None
    item_level: str | None = None
    seconds: float | None = None


class CapacityRepeat(Section):
    """One retraining of the 10% head (``analyses.capacity_repeats`` > 1): its seed, test metrics,
    training summary and per-item predictions."""

    seed: int | None = None
    metrics: Metrics | None = None
    training: TrainingSummary | None = None
    predictions: Predictions | None = None


class Capacity(Section):
    """Table VIII: a probe on the ``k`` most important of ``D`` dimensions. ``relative_change_pct``
    is per metric (``{"f1_micro": ..., "uar": ...}``); version-1 readers also met a single number.

    With ``repeats`` (several retrainings on the same dimensions, seeds ``seeds``), ``metrics`` is
    their mean and ``predictions`` / ``training`` are the first's; the leaderboard's interval draws
    among every repeat's predictions."""

    fraction: float | None = None
    k: int | None = None
    D: int | None = None
    layer: int | None = None
    dims: list[int] | None = None
    attributions_sorted_abs: list[float] | None = None
    metrics: Metrics | None = None
    full_metrics: Metrics | None = None
    relative_change_pct: dict[str, float | None] | float | None = None
    predictions: Predictions | None = None
    ig: IntegratedGradientsInfo | None = None
    training: TrainingSummary | None = None
    dims_file: str | None = None
    seeds: list[int] | None = None
    repeats: list[CapacityRepeat] | None = None
    plot: str | None = None
    seconds: float | None = None
    summary: str | None = None


class TimedSubset(Section):
    count: int | None = None
    audio_s: float | None = None
    load_s: float | None = None
    upstream_s: float | None = None
    head_s: float | None = None
    total_s: float | None = None
    paper_style_s: float | None = None
    real_time_factor: float | None = None
    requested: int | None = None
    rule: str | None = None


class TimedSubsets(Section):
    full: TimedSubset | None = None
    short: TimedSubset | None = None
    long: TimedSubset | None = None


class ExtractionThroughput(Section):
    audio_s: float | None = None
    extract_s: float | None = None
    forward_s: float | None = None
    audio_s_per_s: float | None = None
    batch_s: float | None = None
    forward_calls: int | None = None
    note: str | None = None


class UtteranceTiming(Section):
    id: str
    audio_s: float | None = None
    load_s: float | None = None
    upstream_s: float | None = None
    head_s: float | None = None


class InferenceTime(Section):
    """Table IX: the upstream and head timed at batch size 1 (``harness.run.steps.timing``)."""

    upstream: str | None = None
    params: int | None = None
    params_full_model: int | None = None  # small models: the whole training model (encoder + decoders / heads)
    params_published: float | None = None
    head_params: int | None = None
    granularity: str | None = None
    features: str | None = None
    layer: int | None = None
    device: str | None = None
    device_name: str | None = None
    dtype: str | None = None
    torch_threads: int | None = None
    batch_size: int | None = None
    warmup: int | None = None
    subsets: TimedSubsets | None = None
    paper_style: str | None = None
    extraction: ExtractionThroughput | None = None
    per_utterance: list[UtteranceTiming] | None = None
    seconds: float | None = None
    summary: str | None = None


class UmapFigure(Section):
    """The word UMAP figure (paper Figures 1-3), or the error that stopped it (never the cell)."""

    path: str | None = None
    points: int | None = None
    words: list[str] | None = None
    panels: list[str] | None = None
    error: str | None = None


class Analyses(Section):
    capacity: Capacity | None = None
    inference_time: InferenceTime | None = None
    umap: UmapFigure | None = None


class WordSetting(Section):
    """Word discrimination in one setting (matched: the model's own language; mismatched: another
    language's triplets). ``correct`` holds the per-triplet flags."""

    accuracy: float | None = None
    n_triplets: int | None = None
    correct: list[int] | None = None
    predictions: Predictions | None = None
    triplets_without_audio: int | None = None
    counts: dict[str, int] | None = None
    options: dict[str, str | int | float | bool | None] | None = None
    test_language: str | None = None
    train_language: str | None = None
    corpus: str | None = None
    layer: int | None = None


class WordDiscrimination(Section):
    matched: WordSetting | None = None
    mismatched: WordSetting | None = None


# --------------------------------------------------------------------------- the record
class CellResult(Section):
    """The result of one cell; see the module docstring for the sections."""

    schema_version: Literal[2] = SCHEMA_VERSION
    status: Status
    key: str | None = None  # None: the cell failed before its key could be computed
    cell: CellId
    upstream: UpstreamInfo | None = None
    task: TaskInfo | None = None
    downstream: DownstreamIdentity | None = None
    reason: str | None = None  # status "unavailable": why the cell cannot run here
    error: ErrorInfo | None = None  # status "failed"
    metrics: Metrics | None = None
    dev_metrics: Metrics | None = None
    utterance_metrics: Metrics | None = None  # word-level probes: scores of the utterance vote
    classes: list[str] | None = None
    layer: LayerChoice | None = None
    predictions: Predictions | None = None
    training: TrainingSummary | None = None
    triplets: int | None = None
    word_discrimination: WordDiscrimination | None = None
    data: DataSummary | None = None
    features: FeaturesInfo | None = None
    timings: Timings | None = None
    environment: Environment | None = None
    analyses: Analyses | None = None
    summary: str | None = None
    # the profile's deviations table when the cell ran (harness.config.deviations); absent in older files
    deviations: list[Deviation] | None = None

    def to_json(self) -> str:
        """The file text: the fields that were set, ``schema_version`` first; floats as Python's
        ``json`` writes them (NaN stays NaN, as version-1 files had it)."""
        return json.dumps(self._data(), indent=1, allow_nan=True)

    def _data(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **self.model_dump(exclude_unset=True)}

    @classmethod
    def from_v1(cls, data: Mapping[str, Any]) -> CellResult:
        """The record of a version-1 result dict (see the module docstring for what is lenient)."""
        record = _salvage(cls, _v1_rewrite(data))
        if record is None:  # unreachable: _v1_rewrite supplies every required field
            raise ResultFileError(f"a version-1 result could not be converted: {sorted(data)}")
        return record


def write_result(path: Path, record: CellResult) -> None:
    """Write ``record`` to ``path`` atomically (a reader sees the old file or the whole new one)."""
    from ..results import write_json_atomic

    write_json_atomic(Path(path), record._data())  # the same text as to_json()


def parse_result(data: Any, *, where: str) -> CellResult | None:
    """The record in a parsed result file, or None when ``data`` is not a cell result (a side file
    such as the capacity dimensions, or not a mapping). Version 1 is converted; version 2 is
    validated strictly; another version is a :class:`ResultFileError` naming ``where``."""
    if not isinstance(data, Mapping):
        return None
    if "schema_version" in data:
        version = data["schema_version"]
        if version != SCHEMA_VERSION:
            raise ResultFileError(f"{where}: schema_version {version!r} is not one this harness reads "
                                  f"(it reads {SCHEMA_VERSION}, and version-1 files with \"schema\": 1). "
                                  "Update the harness, or rerun the cell to rewrite the file.")
        try:
            return CellResult.model_validate(data)
        except ValidationError as e:
            raise ResultFileError(f"{where}: not a valid result (schema version {SCHEMA_VERSION}):\n"
                                  + _validation_lines(e) + "\nRerun the cell to rewrite the file.") from None
    if data.get("schema") == V1_SCHEMA:
        return CellResult.from_v1(data)
    return None


def read_result(path: Path) -> CellResult | None:
    """The record in the result file at ``path``; None when the file is absent, unreadable or torn
    (never trusted), or not a cell result. See :func:`parse_result`."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return parse_result(data, where=str(path))


def _validation_lines(error: ValidationError) -> str:
    return "\n".join(f"  - {'.'.join(map(str, e['loc']))}: {e['msg']} (found {e.get('input')!r:.80})"
                     for e in error.errors())


# --------------------------------------------------------------------------- version 1
_FLAG_KEYS = ("correct", "flags", "correct_flags")  # what version-1 readers took as per-item flags


def _v1_rewrite(data: Mapping[str, Any]) -> dict[str, Any]:
    """A version-1 dict reshaped to version 2's names and required fields, before salvaging."""
    out = {k: v for k, v in data.items() if k not in ("schema", "_path", "_skipped")}
    status = out.get("status")
    out["status"] = status if status in ("ok", "failed", "unavailable") else "failed"
    raw_cell = out.get("cell")
    cell: Mapping[str, Any] = raw_cell if isinstance(raw_cell, Mapping) else {}
    seed = cell.get("seed")
    out["cell"] = {**{k: v for k, v in cell.items() if isinstance(v, str) or k == "task"},
                   **{k: "" for k in ("profile", "upstream", "downstream", "language")
                      if not isinstance(cell.get(k), str)},
                   "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else 0}
    out["predictions"] = _v1_predictions(out.get("predictions"))
    words = out.get("word_discrimination")
    if isinstance(words, Mapping):
        out["word_discrimination"] = {k: ({"accuracy": v} if _is_number(v) else _v1_word_setting(v))
                                      for k, v in words.items()}
    return out


def _v1_predictions(pred: Any) -> Any:
    if not isinstance(pred, Mapping):
        return pred
    flags = next((pred[k] for k in _FLAG_KEYS if isinstance(pred.get(k), list) and pred[k]), None)
    out = {k: v for k, v in pred.items() if k not in _FLAG_KEYS}
    if flags is not None:
        out["correct"] = flags
    elif "correct" in pred:
        out["correct"] = pred["correct"]
    return out


def _v1_word_setting(entry: Any) -> Any:
    if not isinstance(entry, Mapping):
        return entry
    return {**entry, "predictions": _v1_predictions(entry["predictions"])} if "predictions" in entry else entry


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


M = TypeVar("M", bound=Section)
_DROP = object()


def _salvage(model: type[M], data: Any) -> M | None:
    """``model`` from ``data`` keeping what validates: a field of the wrong type is left out (read as
    absent), a sub-section is salvaged the same way; None when ``data`` is not a mapping or a
    required field is missing. Keys ``model`` does not declare are left out."""
    if not isinstance(data, Mapping):
        return None
    clean: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name in data:
            value = _salvage_value(info.annotation, data[name])
            if value is not _DROP:
                clean[name] = value
    try:
        return model.model_validate(clean)
    except ValidationError:
        return None


def _salvage_value(annotation: Any, value: Any) -> Any:
    section = _section_in(annotation)
    if section is not None and value is not None:
        record = _salvage(section, value)
        return _DROP if record is None else record
    try:
        return _adapter(annotation).validate_python(value)
    except ValidationError:
        return _DROP


def _section_in(annotation: Any) -> type[Section] | None:
    """The Section class of ``X`` or ``X | None``, else None (lists of sections validate whole)."""
    options = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    found = [a for a in options if isinstance(a, type) and issubclass(a, Section)]
    return found[0] if len(found) == 1 else None


@lru_cache(maxsize=256)
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)
