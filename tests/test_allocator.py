"""The extraction process's allocator setting (harness/allocator.py): it takes effect in a real
extraction, and ``BENCH_MMAP_THRESHOLD=0`` turns it off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.allocator import DEFAULT_THRESHOLD_BYTES, ENV, _glibc_version, threshold_from_env
from harness.errors import BenchError

REPO = Path(__file__).resolve().parents[1]

# A fresh process extracts a real MFCC entry through the harness's entry point (ensure_features,
# which builds the upstream), then frees 16 x 8 MB tensors pinned apart by small live ones: without
# the setting, glibc's threshold has risen to a freed 16 MB block, the 8 MB blocks come from the
# heap, and their holes stay in the RSS; with it, each is mapped on its own and unmapped on free.
_PROBE = """
import json, sys
from pathlib import Path
import torch
from harness import allocator
from harness.config import Workspace
from harness.features.extract import ensure_features
from tests.audio_fixtures import make_dataset
from tests.conftest import copy_workspace

def rss():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmRSS:"))

tmp = Path(sys.argv[1])
ws = Workspace(copy_workspace(tmp / "ws"))
store = ensure_features(workspace=ws, card=ws.card("mfcc"), dataset=make_dataset(tmp / "audio", n=2),
                        language="en", progress=False)
x = torch.ones(4 << 20)  # 16 MB, freed: glibc's dynamic threshold rises to it
del x
before = rss()
big, pins = [], []
for _ in range(16):
    big.append(torch.ones(2 << 20))  # 8 MB each
    pins.append(torch.ones(100_000))  # 400 kB, kept: the big blocks' neighbours
allocated = rss() - before
del big
print(json.dumps({"applied": allocator._applied, "entries": len(store.ids), "allocated": allocated,
                  "retained": rss() - before, "pins": 16 * 400_000}))
"""


def _probe(tmp_path: Path, setting: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if setting is not None:
        env[ENV] = setting
    out = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path)], capture_output=True, text=True, env=env,
                         cwd=REPO, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _glibc_version(),
                    reason="the setting is glibc's mallopt (Linux with glibc only; elsewhere it does nothing)")
def test_freed_tensors_leave_the_rss_of_an_extraction_process(tmp_path: Path) -> None:
    """On (``BENCH_MMAP_THRESHOLD=on``): after a real extraction, 128 MB of freed 8 MB tensors leave
    the RSS (only the 6.4 MB of small live tensors stay). Off (unset, the default): the same 128 MB
    stay, so the first check is the setting's doing, not the allocator's default."""
    on = _probe(tmp_path / "on", "on")
    off = _probe(tmp_path / "off", None)
    assert on["entries"] == off["entries"] == 2
    assert on["applied"] == f"mallopt(M_MMAP_THRESHOLD, {DEFAULT_THRESHOLD_BYTES}) on glibc {_glibc_version()}"
    assert off["applied"] == f"{ENV} off (the default): the allocator left as it is"
    for run in (on, off):
        assert run["allocated"] > 128e6, run  # the tensors were touched: the RSS saw them
    assert on["retained"] - on["pins"] < 10e6, on
    assert off["retained"] - off["pins"] > 100e6, off


def test_threshold_setting_parses_and_refuses_bad_values() -> None:
    assert threshold_from_env({}) == threshold_from_env({ENV: "0"}) == threshold_from_env({ENV: "off"}) == 0
    assert threshold_from_env({ENV: "on"}) == threshold_from_env({ENV: "ON"}) == DEFAULT_THRESHOLD_BYTES
    assert threshold_from_env({ENV: "1048576"}) == 1 << 20
    for bad in ("4MB", "-1", str(64 << 20)):
        with pytest.raises(BenchError) as err:
            threshold_from_env({ENV: bad})
        text = str(err.value)
        assert f"{ENV}={bad!r}" in text and "from 0 to 33554432" in text and f"{ENV}=0" in text


def test_the_plan_counts_what_the_setting_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench plan` reads the setting as the extraction will: three forwards' activations held with
    it off (glibc keeps freed heap blocks), two with it on (BENCHMARKS.md, the plan against
    measurements)."""
    from harness.matrix.plan import forwards_held

    monkeypatch.delenv(ENV, raising=False)
    assert forwards_held() == 3
    monkeypatch.setenv(ENV, "on")
    assert forwards_held() == 2
    monkeypatch.setenv(ENV, "4MB")
    with pytest.raises(BenchError):
        forwards_held()
