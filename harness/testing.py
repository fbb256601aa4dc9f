"""Test fixtures shipped with the package: tiny real-format checkpoints and contract-ready cards.

Everything here writes the *real* on-disk formats at tiny sizes (2 layers, width 32, the real
320-sample stride), so tests exercise the same loading code as real weights:

- s3prl ``*_local`` checkpoints (plain dicts, ``torch.load(weights_only=True)``)::

    wavlm_local   : {"cfg": WavLMConfig attrs, "model": WavLM.state_dict()}
    hubert_local  : {"task_cfg", "model_cfg" (with label_rate), "model_weight", "dictionaries_symbols"}
    wav2vec2_local: {"task_cfg", "model_cfg", "model_weight"}

  and the same files under the name an s3prl *named* entry reads from its download folder;
- Hugging Face ``save_pretrained`` folders (model + ``preprocessor_config.json``) for wav2vec2,
  HuBERT, WavLM (optionally as ``*ForCTC``) and Whisper;
- CTranslate2 Whisper folders (the faster-whisper format), written by ctranslate2's own converter.

:func:`contract_card` turns any registered card into one the contract can run here: the card's
``test.build`` fixture (a tiny checkpoint), else ``@random`` with its ``arch`` shrunk, else the
card as is (no weights to fetch). Card ``test.build`` targets are called as
``build(card=ResolvedCard, out_dir=Path) -> dict`` of argument overrides.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ResolvedCard, Workspace

# conv front end with the real total stride 5*2^6 = 320 samples, 32 channels
TINY_CONV = "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2"
TINY_FAIRSEQ = dict(encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=2,
                    conv_feature_layers=TINY_CONV, conv_pos=16, conv_pos_groups=4)
TINY_HF = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
               conv_dim=[32] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
TINY_WAVLM = dict(num_buckets=32, max_bucket_distance=128)
TINY_WHISPER = dict(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                    decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64)


# --------------------------------------------------------------------------- s3prl formats
def _fairseq_norm(layer_norm: bool) -> dict[str, Any]:
    """Large (LV-60 style) models: layer-norm conv front end, pre-LN transformer, conv bias."""
    if layer_norm:
        return dict(extractor_mode="layer_norm", layer_norm_first=True, conv_bias=True)
    return dict(extractor_mode="default", layer_norm_first=False, conv_bias=False)


def write_tiny_wavlm(path: Path, *, layer_norm: bool = False, seed: int = 0) -> Path:
    import torch
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

    cfg = dict(TINY_FAIRSEQ, relative_position_embedding=True, num_buckets=32, max_distance=128,
               gru_rel_pos=True, normalize=layer_norm, **_fairseq_norm(layer_norm))
    full = WavLMConfig(cfg).__dict__
    torch.manual_seed(seed)
    model = WavLM(WavLMConfig(full))
    torch.save({"cfg": full, "model": model.state_dict()}, path)
    return path


def write_tiny_hubert(path: Path, *, layer_norm: bool = False, seed: int = 0) -> Path:
    import torch
    from s3prl.upstream.hubert.hubert_model import (
        HubertConfig,
        HubertModel,
        HubertPretrainingConfig,
    )

    task_cfg = dataclasses.asdict(HubertPretrainingConfig(label_rate=50.0, sample_rate=16000, normalize=layer_norm))
    model_cfg = dataclasses.asdict(HubertConfig(label_rate=50.0, final_dim=16, **TINY_FAIRSEQ,
                                                **_fairseq_norm(layer_norm)))
    symbols = [[f"{i}" for i in range(8)]]  # 8 k-means units
    torch.manual_seed(seed)
    model = HubertModel(HubertConfig(**model_cfg), HubertPretrainingConfig(**task_cfg), symbols)
    torch.save({"task_cfg": task_cfg, "model_cfg": model_cfg, "model_weight": model.state_dict(),
                "dictionaries_symbols": symbols}, path)
    return path


def write_tiny_wav2vec2(path: Path, *, layer_norm: bool = False, seed: int = 0) -> Path:
    import torch
    from s3prl.upstream.wav2vec2.wav2vec2_model import (
        AudioPretrainingConfig,
        Wav2Vec2Config,
        Wav2Vec2Model,
    )

    task_cfg = dataclasses.asdict(AudioPretrainingConfig(sample_rate=16000, normalize=layer_norm))
    model_cfg = dataclasses.asdict(Wav2Vec2Config(final_dim=16, latent_vars=8, latent_groups=2, latent_dim=0,
                                                  **TINY_FAIRSEQ, **_fairseq_norm(layer_norm)))
    torch.manual_seed(seed)
    model = Wav2Vec2Model(Wav2Vec2Config(**model_cfg))
    torch.save({"task_cfg": task_cfg, "model_cfg": model_cfg, "model_weight": model.state_dict()}, path)
    return path


S3PRL_WRITERS = {"wavlm": write_tiny_wavlm, "hubert": write_tiny_hubert, "wav2vec2": write_tiny_wav2vec2}


def write_tiny_s3prl(family: str, path: Path, *, layer_norm: bool = False, seed: int = 0) -> Path:
    """A tiny checkpoint in the format of s3prl family ``wavlm`` / ``hubert`` / ``wav2vec2``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return S3PRL_WRITERS[family](path, layer_norm=layer_norm, seed=seed)


def tiny_s3prl_for_card(*, card: ResolvedCard, out_dir: Path) -> dict[str, Any]:
    """``test.build`` for s3prl cards: a tiny checkpoint where the card's entry will read it.

    ``*_local`` entries get ``path_or_url``; named entries get the file under s3prl's cache name
    (``<sha256(url)>.<basename>``) in ``out_dir``, passed as ``download_dir``. Entries whose
    name says ``large`` get the layer-norm front end of the large models.
    """
    from upstreams.s3prl_hub import cache_path, hub_index

    name = str(card.card.args["name"])
    url, family = hub_index()[name]
    layer_norm = "large" in name
    if url is None:
        path = write_tiny_s3prl(family, out_dir / f"tiny_{family}.pt", layer_norm=layer_norm)
        return {"path_or_url": str(path)}
    write_tiny_s3prl(family, cache_path(url, download_dir=out_dir), layer_norm=layer_norm)
    return {"download_dir": str(out_dir)}


# --------------------------------------------------------------------------- Hugging Face formats
def write_tiny_hf(out_dir: Path, *, family: str = "wavlm", ctc: bool = False, feat_extract_norm: str = "group",
                  do_normalize: bool = True, seed: int = 0) -> Path:
    """A ``save_pretrained`` folder of a tiny wav2vec2 / hubert / wavlm (``*ForCTC`` when ``ctc``)."""
    import torch
    import transformers as T

    from upstreams.hf import quiet_transformers

    config_cls, base_cls, ctc_cls = {
        "wavlm": (T.WavLMConfig, T.WavLMModel, T.WavLMForCTC),
        "hubert": (T.HubertConfig, T.HubertModel, T.HubertForCTC),
        "wav2vec2": (T.Wav2Vec2Config, T.Wav2Vec2Model, T.Wav2Vec2ForCTC),
    }[family]
    layer = feat_extract_norm == "layer"
    extra = TINY_WAVLM if family == "wavlm" else {}
    config = config_cls(**TINY_HF, **extra, feat_extract_norm=feat_extract_norm, do_stable_layer_norm=layer,
                        conv_bias=layer, vocab_size=12)
    torch.manual_seed(seed)
    with quiet_transformers():
        (ctc_cls if ctc else base_cls)(config).save_pretrained(out_dir)
    T.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=do_normalize,
                               return_attention_mask=layer).save_pretrained(out_dir)
    return out_dir


def tiny_whisper_config() -> dict[str, Any]:
    """whisper-small geometry (80 mels, 1500 positions, conv stride 2) at width 32, 2 encoder layers."""
    return dict(config_class="WhisperConfig", num_mel_bins=80, max_source_positions=1500, vocab_size=100,
                max_target_positions=32, pad_token_id=1, bos_token_id=2, eos_token_id=2, decoder_start_token_id=3,
                **TINY_WHISPER)


def write_tiny_whisper(out_dir: Path, *, seed: int = 0, with_preprocessor: bool = True) -> Path:
    """A ``save_pretrained`` folder of a tiny ``WhisperForConditionalGeneration`` (+ feature extractor)."""
    import torch
    import transformers as T

    from upstreams.hf import config_from_arch, quiet_transformers

    torch.manual_seed(seed)
    with quiet_transformers():
        T.WhisperForConditionalGeneration(config_from_arch(tiny_whisper_config())).save_pretrained(out_dir)
    if with_preprocessor:
        T.WhisperFeatureExtractor(feature_size=80, sampling_rate=16000).save_pretrained(out_dir)
    return out_dir


# --------------------------------------------------------------------------- CTranslate2 (faster-whisper) format
def write_tiny_ct2_whisper(out_dir: Path, *, quantization: str = "float16", seed: int = 0,
                           hf_model: Any = None) -> Path:
    """A CTranslate2 Whisper folder (``model.bin``, ``config.json``, ``vocabulary.json``) written by
    ctranslate2's own converter code (its ``WhisperLoader`` spec, ``optimize(quantization)``, ``save``)
    from a tiny ``WhisperForConditionalGeneration`` (``hf_model``, else one built from
    :func:`tiny_whisper_config` with ``seed``). ``quantization``: float32, float16, bfloat16, int8,
    int8_float32, int16 ... as ``ct2-transformers-converter --quantization`` takes it.
    Needs the ``ctranslate2`` package (test extra)."""
    import torch
    import transformers as T
    from ctranslate2.converters.transformers import WhisperLoader

    from upstreams.hf import config_from_arch, quiet_transformers

    if hf_model is None:
        torch.manual_seed(seed)
        with quiet_transformers():
            hf_model = T.WhisperForConditionalGeneration(config_from_arch(tiny_whisper_config())).eval()
    loader = WhisperLoader()
    spec = loader.get_model_spec(hf_model)
    # the encoder never reads the vocabulary; the converter needs one entry per token id
    spec.register_vocabulary([f"<tok{i}>" for i in range(hf_model.config.vocab_size)])
    loader.set_config(spec.config, hf_model, None)
    spec.validate()
    spec.optimize(quantization=quantization)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec.save(str(out_dir))
    return out_dir


def tiny_ct2_whisper_for_card(*, card: ResolvedCard, out_dir: Path) -> dict[str, Any]:
    """``test.build`` for ``ct2_whisper`` cards: a tiny CTranslate2 Whisper folder passed as ``model_id``
    (which wins over the card's ``weights_package``)."""
    return {"model_id": str(write_tiny_ct2_whisper(out_dir / "ct2_whisper"))}


# --------------------------------------------------------------------------- cards the contract can run here
def shrink_arch(arch: dict[str, Any]) -> dict[str, Any]:
    """The same architecture family and front end (norm type, strides, kernels) at 2 layers, width 32."""
    out = dict(arch)
    if arch.get("config_class") == "WhisperConfig":
        out.update(TINY_WHISPER)
        return out
    out.update(TINY_HF)
    if arch.get("config_class") == "WavLMConfig":
        out.update(TINY_WAVLM)
    return out


def contract_route(card: ResolvedCard) -> str:
    """How the contract tests run a card offline: ``tiny_checkpoint``, ``random_shrunk`` or ``as_is``."""
    if card.card.test.build:
        return "tiny_checkpoint"
    if "arch" in card.card.args:
        return "random_shrunk"
    return "as_is"


def contract_card(card: ResolvedCard, *, out_dir: Path) -> ResolvedCard:
    """``card`` made runnable offline and fast, through the real card machinery (see :func:`contract_route`)."""
    from .config import deep_merge
    from .errors import BenchError
    from .registry import builder_problem, import_string
    from .schema import Card

    route = contract_route(card)
    if route == "as_is":
        return card
    if route == "tiny_checkpoint":
        problem = builder_problem(str(card.card.test.build))
        if problem:
            raise BenchError(f"{card.path}: test.build: {problem}")
        overrides = import_string(str(card.card.test.build))(card=card, out_dir=out_dir)
        random_init = card.random_init
    else:
        overrides = {"arch": shrink_arch(card.card.args["arch"])}
        random_init = True
    new = Card.model_validate(deep_merge(card.card.model_dump(mode="json"), {"args": overrides}))
    suffix = "@random" if random_init and not card.random_init else ""
    return dataclasses.replace(card, name=card.name + suffix, card=new, random_init=random_init)


def repo_workspace(tmp_dir: Path) -> Workspace:
    """The repository's workspace; before the repo has a benchmark.yaml, a minimal one in ``tmp_dir`` that
    links to the repository's ``upstreams/`` (so every card file is seen exactly as in the repo)."""
    import upstreams

    from .config import Workspace

    repo = Path(upstreams.__file__).resolve().parent.parent
    if (repo / "benchmark.yaml").is_file():
        return Workspace(repo)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    (tmp_dir / "benchmark.yaml").write_text(json.dumps({"profiles": {}}))
    link = tmp_dir / "upstreams"
    if not link.exists():
        link.symlink_to(repo / "upstreams", target_is_directory=True)
    return Workspace(tmp_dir)


# --------------------------------------------------------------------------- small models
def write_tiny_small_model(path: Path, *, model: str, language: str = "en", seed: int = 0) -> Path:
    """A small-model checkpoint in the real format (untrained weights), as ``bench train-upstream`` writes it."""
    from .smallmodels.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, save_checkpoint
    from .smallmodels.models import SmallModelConfig
    from .smallmodels.train import _plain_state, build_seeded_model

    config = SmallModelConfig(model=model)
    net = build_seeded_model(config, seed=seed)
    return save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "model": model,
                                  "language": language, "config": config.to_dict(),
                                  "encoder_state_dict": _plain_state(net.encoder), "model_state_dict": _plain_state(net),
                                  "teacher": None, "epochs": 0, "best_epoch": 0, "seed": seed})


def tiny_lstm_for_card(*, card: ResolvedCard, out_dir: Path) -> dict[str, Any]:
    """``test.build`` for lstm cards: an untrained checkpoint of the card's model, passed as ``checkpoint``."""
    model = str(card.card.args["model"])
    return {"checkpoint": str(write_tiny_small_model(out_dir / f"{model}.pt", model=model))}
