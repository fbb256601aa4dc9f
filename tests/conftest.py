"""Shared fixtures: a copy of the repository's YAML workspace in a temp folder, isolated paths."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never touch a hub: transformers / huggingface_hub stay offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def copy_workspace(dst: Path) -> Path:
    """benchmark.yaml, tasks/, downstreams/ and upstreams/cards/ copied to ``dst`` (paths inside ``dst``)."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "benchmark.yaml", dst / "benchmark.yaml")
    for folder in ("tasks", "downstreams"):
        shutil.copytree(REPO / folder, dst / folder)
    shutil.copytree(REPO / "upstreams" / "cards", dst / "upstreams" / "cards")
    return dst


@pytest.fixture
def workspace_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the workspace whose cache/results/models live under tmp_path."""
    root = copy_workspace(tmp_path / "ws")
    for var in ("BENCH_CACHE", "BENCH_RESULTS", "BENCH_MODELS", "BENCH_CARDS", "BENCH_LEADERBOARDS", "BENCH_ROOT"):
        monkeypatch.delenv(var, raising=False)
    return root


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder shared by the whole session (the synthetic corpus is generated once)."""
    env = os.environ.get("BENCH_TEST_CACHE")
    return Path(env) if env else tmp_path_factory.mktemp("bench-cache")


@pytest.fixture(scope="session")
def synth_corpora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``corpora/synth`` folder holding the smoke-size English corpus, generated once per session
    (tests copy it into their workspace's cache with ``tests.matrix_fixtures.seed_corpus``)."""
    from harness.synth import load_synth_corpus
    from tests.matrix_fixtures import smoke_synth

    root = tmp_path_factory.mktemp("synth") / "synth"
    load_synth_corpus(root=root, language="en", options=smoke_synth())
    return root


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run tests marked slow (CI runs them; the default run skips them)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow") or config.getoption("-m"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow (or -m slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
