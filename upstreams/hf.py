"""Hugging Face ``transformers`` speech encoders: wav2vec2 / HuBERT / WavLM (``hf``) and Whisper's encoder (``whisper``).

Weights are read from a local directory, from ``models_dir/<model_id>`` (``.bench/models`` in a
workspace) or from the local Hugging Face cache, never from the network
(``local_files_only=True``). An offline miss raises :class:`~harness.errors.WeightsMissingError`
at once, naming the id, the cache folder that was checked and how to fill it.

Layers (``hf``): ``hidden_states`` as transformers returns them. ``layers[0]`` is the CNN feature
projection after the convolutional position embedding (the paper's layer 0) and ``layers[i]`` is
transformer layer ``i``: 13 states for base models, 25 for large ones. ASR fine-tuned (CTC)
checkpoints are loaded through their base model class (``AutoModel``): the CTC head is dropped
and every hidden state is returned.

Layers (``whisper``): the encoder's ``hidden_states``: ``layers[0]`` is the convolution +
sinusoidal position output, ``layers[i]`` encoder layer ``i`` (the last one after the final
layer norm, as transformers returns it); 13 for whisper-small. ``window: padded30`` (the default,
the paper-faithful 30 s window) or ``real_length`` (the real audio only, cheaper on CPU): see
:mod:`upstreams.whisper_window`.

Random init (``@random``): the architecture comes from the card's ``arch`` mapping
(``config_class`` = a transformers config class name, the rest its keyword arguments), so a
random-init control row and ``bench info`` parameter counts need no download. When the weights
are present, their own ``config.json`` wins and a disagreeing ``arch`` is reported as a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from harness.errors import BenchError, WeightsMissingError
from harness.safeload import refusing_pickles

from .base import ArchInfo, Upstream, UpstreamOutput, zero_padding
from .hf_weights import (
    WEIGHT_FILES,
    _looks_like_path,
    hf_cache_folder,
    hf_hub_cache,
    locate_weights,
)
from .whisper_window import WhisperWindowedEncoder, check_window, whisper_feature_extractor

log = logging.getLogger(__name__)

PREPROCESSOR_FILE = "preprocessor_config.json"


# --------------------------------------------------------------------------- where weights live
def weights_missing(model_id: str, *, models_dir: str | None = None) -> WeightsMissingError:
    """The error for an offline miss: which id, where we looked, how to fix it."""
    if _looks_like_path(model_id):
        return WeightsMissingError(
            f"Hugging Face model directory {model_id!r} has no config.json plus weights "
            f"({' / '.join(WEIGHT_FILES)}). Point upstream.args.model_id at a folder written by "
            "save_pretrained (or a snapshot folder of the HF cache)."
        )
    cache = hf_cache_folder(model_id)
    where = f"{cache}" + (f" or {Path(models_dir) / model_id}" if models_dir else "")
    return WeightsMissingError(
        f"weights for Hugging Face model {model_id!r} are not available offline: nothing in {where}. "
        f"To fix, either (1) on a machine with internet run `huggingface-cli download {model_id}` "
        f"(or `hf download {model_id}`) and copy its cache folder {cache.name} into {hf_hub_cache()} "
        "here (HF_HOME / HF_HUB_CACHE relocate the cache), or (2) download the repository into a "
        "folder and pass it: --set upstream.args.model_id=/path/to/folder"
        + (f" (or put it at {Path(models_dir) / model_id})" if models_dir else "")
        + ". For a random-init control that needs no weights, use the card name with @random."
    )


@contextlib.contextmanager
def _quiet_mask_warning() -> Iterator[None]:
    """WavLM passes a float position bias and a bool padding mask to torch's attention, which warns
    on every call that mixing the two types is deprecated; the result is correct, the warning noise."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask and attn_mask")
        yield


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bars while loading (CTC heads are dropped on purpose)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


# --------------------------------------------------------------------------- configs
def config_from_arch(arch: Mapping[str, Any]) -> Any:
    """A transformers config from a card's ``arch``: ``{config_class: WavLMConfig, hidden_size: 1024, ...}``."""
    import transformers
    from transformers import PretrainedConfig

    kwargs = dict(arch)
    name = kwargs.pop("config_class", None)
    cls = getattr(transformers, str(name), None) if name else None
    if not (isinstance(cls, type) and issubclass(cls, PretrainedConfig)):
        raise BenchError(
            f"upstream arch needs `config_class` naming a transformers config class (e.g. WavLMConfig, "
            f"Wav2Vec2Config, HubertConfig, WhisperConfig); found {name!r}"
        )
    return cls(**kwargs)


def arch_mismatches(arch: Mapping[str, Any], config: Any) -> dict[str, tuple[Any, Any]]:
    """Keys where the card's ``arch`` disagrees with a real ``config`` -> (card value, checkpoint value)."""
    out = {}
    for key, want in arch.items():
        if key == "config_class" or not hasattr(config, key):
            continue
        have = getattr(config, key)
        if _as_list(want) != _as_list(have):
            out[key] = (want, have)
    return out


def _as_list(value: Any) -> Any:
    """YAML gives lists where configs hold tuples: compare them as lists."""
    return list(value) if isinstance(value, tuple | list) else value


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _resolve_config(*, model_id: str, folder: Path | None, arch: Mapping[str, Any] | None) -> Any:
    """The real config when the weights are here, else the card's ``arch``; None when neither."""
    if folder is not None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        if arch:
            diff = arch_mismatches(arch, config)
            if diff:
                log.warning("card arch for %s disagrees with its config.json (card, checkpoint): %s", model_id, diff)
        return config
    return config_from_arch(arch) if arch else None


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed random init without disturbing the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _conv_arithmetic(config: Any) -> tuple[int, int]:
    """(total stride, receptive field) of a wav2vec2-style conv front end, in samples."""
    stride, field = 1, 1
    for k, s in zip(config.conv_kernel, config.conv_stride, strict=True):
        field += (k - 1) * stride
        stride *= s
    return stride, field


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _meta_params(build: Any) -> int:
    """Parameter count of ``build()`` constructed on the meta device (no memory, no weights)."""
    with torch.device("meta"), quiet_transformers():
        return _count(build())


# --------------------------------------------------------------------------- wav2vec2 / HuBERT / WavLM
def normalize_utterances(wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> torch.Tensor:
    """Zero-mean unit-variance per utterance over its valid samples; padding stays 0.

    Same arithmetic as ``Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm`` (population
    variance, eps 1e-7), so features equal those of the paper's feature-extractor path.
    """
    out = torch.zeros_like(wavs_BT)
    for b, n in enumerate(lengths_B.tolist()):
        x = wavs_BT[b, :n]
        out[b, :n] = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
    return out


class HFUpstream(Upstream):
    """A wav2vec2-style transformers encoder (wav2vec2, HuBERT, WavLM, data2vec-audio ...), all hidden states.

    Options:
      ``normalize``: zero-mean unit-variance input per utterance; None = what the checkpoint's
        ``preprocessor_config.json`` says (``do_normalize``), True when there is none
        (``Wav2Vec2FeatureExtractor``'s default).
      ``attention_mask``: None = pass a mask exactly when ``feat_extract_norm == "layer"`` (what
        the released feature extractors do; group-norm models were trained without one).
      ``per_utterance``: run the conv front end on each utterance alone and the transformer on the
        batch with an attention mask. Group-norm front ends normalise over the padded length, so
        plainly batched features of a short utterance depend on its neighbours; this makes them
        exact (as if each utterance ran alone) and keeps the transformer batched.
    """

    granularity = "frame"
    model: Any  # a transformers PreTrainedModel (typed loosely: its methods are not visible to mypy)

    def __init__(self, *, model_id: str, random_init: bool = False, arch: dict[str, Any] | None = None,
                 revision: str | None = None, normalize: bool | None = None,
                 attention_mask: bool | None = None, per_utterance: bool = False, seed: int = 0,
                 models_dir: str | None = None):
        super().__init__()
        self.model_id = model_id
        folder = locate_weights(model_id, revision=revision, models_dir=models_dir)
        if folder is None and not random_init:
            raise weights_missing(model_id, models_dir=models_dir)
        self.model, config = self._load(model_id=model_id, folder=folder, arch=arch, random_init=random_init,
                                        seed=seed)
        preprocessor = _read_json(folder / PREPROCESSOR_FILE) if folder is not None else {}
        self.normalize = bool(preprocessor.get("do_normalize", True)) if normalize is None else normalize
        self.use_attention_mask = (config.feat_extract_norm == "layer") if attention_mask is None else attention_mask
        self.per_utterance = per_utterance
        self.sample_rate = int(preprocessor.get("sampling_rate", 16000))
        self.num_layers = config.num_hidden_layers + 1
        self.hidden_size = config.hidden_size
        self.downsample_rate, self.min_input_samples = _conv_arithmetic(config)

    @staticmethod
    def _load(*, model_id: str, folder: Path | None, arch: Mapping[str, Any] | None, random_init: bool,
              seed: int) -> tuple[torch.nn.Module, Any]:
        from transformers import AutoModel

        config = _resolve_config(model_id=model_id, folder=folder, arch=arch)
        if config is None:
            raise BenchError(f"random init of {model_id!r} needs the card's `arch` (no local config.json either)")
        with quiet_transformers():
            if random_init or folder is None:
                with _seeded(seed):
                    model = AutoModel.from_config(config)
            else:
                with refusing_pickles(folder):
                    model = AutoModel.from_pretrained(folder, local_files_only=True)
        if not hasattr(model, "_get_feat_extract_output_lengths"):
            raise BenchError(f"{model_id!r} ({type(model).__name__}) is not a wav2vec2-style encoder; "
                             "use the `whisper` adapter for Whisper checkpoints")
        return model, model.config

    @classmethod
    def describe(cls, *, model_id: str, random_init: bool = False, arch: dict[str, Any] | None = None,
                 revision: str | None = None, models_dir: str | None = None, **_runtime_options: Any) -> ArchInfo:
        """Architecture and weight location without loading weights (parameters counted on the meta device)."""
        from transformers import AutoModel

        folder = locate_weights(model_id, revision=revision, models_dir=models_dir)
        config = _resolve_config(model_id=model_id, folder=folder, arch=arch)
        location = str(folder) if folder else str(hf_cache_folder(model_id)) if not _looks_like_path(model_id) else model_id
        if config is None:
            return ArchInfo(params=None, num_layers=None, hidden_size=None, downsample_rate=None,
                            weights_source=model_id, weights_present=False, weights_location=location,
                            notes=("no `arch` in the card and no local config.json",))
        stride, _ = _conv_arithmetic(config)
        return ArchInfo(params=_meta_params(lambda: AutoModel.from_config(config)),
                        num_layers=config.num_hidden_layers + 1, hidden_size=config.hidden_size,
                        downsample_rate=stride, weights_source=model_id, weights_present=folder is not None,
                        weights_location=location,
                        extra={"config_class": type(config).__name__, "feat_extract_norm": config.feat_extract_norm},
                        notes=("random init: weights not used",) if random_init else ())

    def frame_lengths(self, lengths_B: torch.Tensor) -> torch.Tensor:
        """Valid output frames per utterance, from the model's own conv arithmetic."""
        return self.model._get_feat_extract_output_lengths(lengths_B).long().clamp(min=0)

    def _encode(self, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.normalize:
            wavs_BT = normalize_utterances(wavs_BT, lengths_B)
        else:
            wavs_BT = wavs_BT * (torch.arange(wavs_BT.shape[1], device=wavs_BT.device)[None] < lengths_B[:, None])
        mask = None
        if self.use_attention_mask:
            mask = (torch.arange(wavs_BT.shape[1], device=wavs_BT.device)[None] < lengths_B[:, None]).long()
        with _quiet_mask_warning():
            out = self.model(wavs_BT, attention_mask=mask, output_hidden_states=True, return_dict=True)
        return tuple(out.hidden_states)

    def forward(self, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> UpstreamOutput:
        lengths_B = lengths_B.to(wavs_BT.device).long()
        frames_B = self.frame_lengths(lengths_B)
        if not self.per_utterance:
            return UpstreamOutput(layers=zero_padding(self._encode(wavs_BT, lengths_B), frames_B), lengths=frames_B.cpu())
        return UpstreamOutput(layers=zero_padding(self._encode_exact(wavs_BT, lengths_B), frames_B),
                              lengths=frames_B.cpu())

    def _encode_exact(self, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Batch-independent features at batched speed: the conv front end (whose group norm
        normalises over the whole input) runs on each utterance alone; the transformer runs on the
        batch with an attention mask, and the model zeroes padded frames before its positional
        convolution, so every utterance sees exactly what it would see alone (verified to 1e-6)."""
        if self.normalize:
            wavs_BT = normalize_utterances(wavs_BT, lengths_B)
        conv = self.model.feature_extractor
        feats = [conv(wavs_BT[b: b + 1, :n])[0] for b, n in enumerate(lengths_B.tolist())]  # [C, T_b]
        padded = feats[0].new_zeros((len(feats), feats[0].shape[0], max(f.shape[1] for f in feats)))
        for b, f in enumerate(feats):
            padded[b, :, : f.shape[1]] = f
        mask = (torch.arange(wavs_BT.shape[1], device=wavs_BT.device)[None] < lengths_B[:, None]).long()
        conv.forward = lambda _input: padded  # the model's own forward, with the front end already run
        try:
            with _quiet_mask_warning():
                out = self.model(wavs_BT, attention_mask=mask, output_hidden_states=True, return_dict=True)
        finally:
            del conv.forward
        return tuple(out.hidden_states)


# --------------------------------------------------------------------------- Whisper
class WhisperEncoderUpstream(WhisperWindowedEncoder):
    """Whisper's encoder (a transformers checkpoint) on log-mel input, every hidden state, frames
    beyond the real audio dropped.

    ``window``: ``padded30`` (default, the paper-faithful 30 s window: each 30 s chunk is padded
    to the window, encoded, and only its first ``ceil(samples / 320)`` frames are kept) or
    ``real_length`` (the encoder runs on the real audio only, positional table sliced); see
    :mod:`upstreams.whisper_window`. An utterance is never affected by its batch.
    """

    def __init__(self, *, model_id: str, random_init: bool = False, arch: dict[str, Any] | None = None,
                 revision: str | None = None, window: str = "padded30", seed: int = 0,
                 models_dir: str | None = None):
        super().__init__()
        check_window(window)
        self.model_id = model_id
        folder = locate_weights(model_id, revision=revision, models_dir=models_dir)
        if folder is None and not random_init:
            raise weights_missing(model_id, models_dir=models_dir)
        config = _resolve_config(model_id=model_id, folder=folder, arch=arch)
        if config is None:
            raise BenchError(f"random init of {model_id!r} needs the card's `arch` (no local config.json either)")
        self._setup(encoder=self._load_encoder(folder=folder, config=config, random_init=random_init, seed=seed),
                    feature_extractor=self._feature_extractor(folder=folder, config=config), window=window)

    @staticmethod
    def _load_encoder(*, folder: Path | None, config: Any, random_init: bool, seed: int) -> torch.nn.Module:
        from transformers import WhisperModel
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        with quiet_transformers():
            if random_init or folder is None:
                with _seeded(seed):
                    return WhisperEncoder(config)
            # the checkpoint holds the full seq2seq model; keep the encoder, drop the decoder
            with refusing_pickles(folder):
                return WhisperModel.from_pretrained(folder, local_files_only=True).get_encoder()

    @staticmethod
    def _feature_extractor(*, folder: Path | None, config: Any) -> Any:
        from transformers import WhisperFeatureExtractor

        if folder is not None and (folder / PREPROCESSOR_FILE).is_file():
            return WhisperFeatureExtractor.from_pretrained(folder, local_files_only=True)
        return whisper_feature_extractor(num_mel_bins=config.num_mel_bins)

    @classmethod
    def describe(cls, *, model_id: str, random_init: bool = False, arch: dict[str, Any] | None = None,
                 revision: str | None = None, models_dir: str | None = None, **_runtime_options: Any) -> ArchInfo:
        """Encoder parameters (what the adapter runs) plus the full seq2seq model's, on the meta device."""
        from transformers import WhisperForConditionalGeneration
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        folder = locate_weights(model_id, revision=revision, models_dir=models_dir)
        config = _resolve_config(model_id=model_id, folder=folder, arch=arch)
        location = str(folder) if folder else str(hf_cache_folder(model_id)) if not _looks_like_path(model_id) else model_id
        if config is None:
            return ArchInfo(params=None, num_layers=None, hidden_size=None, downsample_rate=None,
                            weights_source=model_id, weights_present=False, weights_location=location,
                            notes=("no `arch` in the card and no local config.json",))
        return ArchInfo(params=_meta_params(lambda: WhisperEncoder(config)), num_layers=config.encoder_layers + 1,
                        hidden_size=config.d_model, downsample_rate=320, weights_source=model_id,
                        weights_present=folder is not None, weights_location=location,
                        extra={"params_full_model": _meta_params(lambda: WhisperForConditionalGeneration(config)),
                               "config_class": type(config).__name__},
                        notes=("params = encoder only (what the embeddings come from); params_full_model "
                               "= encoder + decoder, the published figure",))
