"""The generator's options and identity: what the audio depends on, and so what names the cache folder.

Leaf of the package (imports only :mod:`harness.schema` and :mod:`harness.errors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, Problem
from ..schema import SynthSpec

GENERATOR_VERSION = 1
SAMPLE_RATE_HZ = 16000


def validate_options(options: Mapping[str, Any]) -> SynthSpec:
    """SynthSpec from ``options``, with every problem reported at once (ConfigError)."""
    from pydantic import ValidationError

    try:
        spec = SynthSpec.model_validate(dict(options))
    except ValidationError as e:
        raise ConfigError([Problem(where="synth options", key=".".join(str(p) for p in err["loc"]) or "(root)",
                                   expected=err["msg"], found=repr(err.get("input")))
                           for err in e.errors()]) from None
    if sum(spec.split_speakers) != spec.speakers_per_language:
        raise ConfigError([Problem(where="synth options", key="split_speakers",
                                   expected="train+dev+test speakers = speakers_per_language "
                                            f"({spec.speakers_per_language})",
                                   found=f"{list(spec.split_speakers)} (sum {sum(spec.split_speakers)})",
                                   hint="Change one of the two so that they agree.")])
    return spec



def generator_config(*, language: str, spec: SynthSpec) -> dict[str, Any]:
    """Everything the audio depends on; its hash names the cache folder."""
    from importlib import metadata

    try:
        espeak_version = metadata.version("espeakng-loader")
    except metadata.PackageNotFoundError:
        espeak_version = "unknown"
    return {"generator_version": GENERATOR_VERSION, "language": language, "spec": spec.model_dump(mode="json"),
            "sample_rate_hz": SAMPLE_RATE_HZ, "espeakng_loader": espeak_version}
