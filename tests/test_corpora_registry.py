"""Every built-in corpus adapter, reached through the registry: its contract and its missing-corpus error."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from harness.config.validate import option_problems
from harness.corpora import ADAPTER_MODULES
from harness.errors import DataError
from harness.registry import CORPORA

REAL = [n for n in CORPORA.names() if CORPORA.entry(n).target.startswith("harness.corpora.")]


def test_registry_lists_every_adapter_module() -> None:
    assert len(REAL) == 6 and sorted(REAL) == sorted(ADAPTER_MODULES)


@pytest.mark.parametrize("name", REAL)
def test_adapter_contract(name: str, tmp_path: Path) -> None:
    load = CORPORA.load(name)
    params = inspect.signature(load).parameters
    assert [p for p in ("root", "language", "options") if params[p].kind is inspect.Parameter.KEYWORD_ONLY] == \
        ["root", "language", "options"]
    module = inspect.getmodule(load)
    assert module.OPTIONS and module.URL and module.LAYOUT and module.__doc__
    language = {"commonvoice": "fr", "cafe": "fr", "manifest": "fi"}.get(name, "en")
    with pytest.raises(DataError) as e:
        load(root=tmp_path / "absent", language=language, options={})
    assert "absent" in str(e.value) and "Expected layout" in str(e.value)


def test_option_problems_without_reading_the_corpus() -> None:
    problems = option_problems("iemocap", {"merge_exited": True, "test_sessions": 5.5}, where="benchmark.yaml: corpora.iemocap")
    rendered = [p.render() for p in problems]
    assert len(rendered) == 2
    assert "Did you mean 'merge_excited'" in rendered[0]
    assert "options.test_sessions: expected a list of strings" in rendered[1]
    assert option_problems("cafe", {"test_actors": ["11", "12"]}, where="x") == []
    assert option_problems("not_builtin", {"anything": 1}, where="x") == []


def test_docs_mention_every_option() -> None:
    import importlib

    docs = (Path(__file__).resolve().parents[1] / "docs" / "corpora.md").read_text(encoding="utf-8")
    absent = [f"{name}.{key}" for name in ADAPTER_MODULES
              for key in importlib.import_module(f"harness.corpora.{name}").OPTIONS if f"`{key}`" not in docs]
    assert absent == []
