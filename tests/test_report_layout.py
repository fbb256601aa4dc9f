"""The paper layout is data (reference/paper_layout.yaml): validated by `bench validate` with
file, key and did-you-mean, consistent with the published tables, and what the tables follow."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import yamlio
from harness.cli import main
from harness.config import Workspace, load_paper_layout, paper_layout_path
from harness.report import build_tables, render_markdown
from harness.report.records import repository_layout
from harness.report.write import load_published
from harness.schema import PAPER_LAYOUT_FILE

REPO = Path(__file__).resolve().parents[1]


def _workspace_layout(workspace_dir: Path, edit: tuple[str, str]) -> Path:
    """The repository's layout copied into the workspace with one text edit."""
    path = workspace_dir / PAPER_LAYOUT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / PAPER_LAYOUT_FILE, path)
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    return path


def test_repository_layout_matches_the_published_tables() -> None:
    """The paper's model order and groups are written once in the layout; the published tables
    list the same models, in the same order, in the same groups."""
    layout = repository_layout()
    published = yamlio.load(REPO / "reference" / "paper_tables.yaml", expand=False)["models"]
    assert layout.paper_models == tuple(published) and len(layout.paper_models) == 15
    groups = {m: g.key for g in layout.row_groups for m in g.paper_models}
    assert groups == {m: v["group"] for m, v in published.items()}
    assert paper_layout_path(None) == REPO / PAPER_LAYOUT_FILE


def test_unknown_key_is_reported_with_file_key_and_did_you_mean(workspace_dir: Path) -> None:
    path = _workspace_layout(workspace_dir, ("    label: Base models\n", "    labl: Base models\n"))
    problems = Workspace(workspace_dir).validate()
    assert [p.key for p in problems] == ["row_groups.1.label", "row_groups.1.labl"]
    unknown = problems[1]
    assert unknown.where == str(path) and "unknown key 'labl'" in unknown.found and "'label'" in unknown.hint


def test_misspelt_reference_is_reported_with_did_you_mean(workspace_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _workspace_layout(workspace_dir, ("tasks: [intent, topic, request]", "tasks: [intent, topic, requets]"))
    problems = Workspace(workspace_dir).validate()
    assert len(problems) == 1
    p = problems[0]
    assert (p.where, p.key, p.found) == (str(path), "tables.semantic.tasks[2]", "'requets'")
    assert "Did you mean 'request'?" in p.hint
    assert main(["--root", str(workspace_dir), "validate"]) == 1
    err = capsys.readouterr().err
    assert f"{path}: tables.semantic.tasks[2]" in err and "Did you mean 'request'?" in err


def test_layout_cross_references(workspace_dir: Path) -> None:
    path = _workspace_layout(workspace_dir, ("card_groups: [base]", "card_groups: [bass]"))
    text = path.read_text().replace("other_group: other", "other_group: others")
    path.write_text(text.replace('name: "task_{task}"', 'name: "task_x"'))
    problems = {p.key: p for p in Workspace(workspace_dir).validate()}
    assert set(problems) == {"row_groups[1].card_groups[0]", "other_group", "tables.extra_task.name"}
    assert "'base'" in problems["row_groups[1].card_groups[0]"].hint and "'other'" in problems["other_group"].hint


def test_not_yaml_data_is_a_problem_not_a_crash(workspace_dir: Path) -> None:
    path = workspace_dir / PAPER_LAYOUT_FILE
    path.parent.mkdir(parents=True)
    path.write_text("languages: !!python/object:os.system {}\n")
    problems = Workspace(workspace_dir).validate()
    assert [(p.where, p.key) for p in problems] == [(str(path), "<file>")]


def test_tables_follow_the_workspace_layout(workspace_dir: Path) -> None:
    """Titles, group labels and abbreviations come from the file, not from the code."""
    path = _workspace_layout(workspace_dir, ("label: Small-scale models", "label: Tiny models"))
    path.write_text(path.read_text().replace("gender: {abbr: Gen,", "gender: {abbr: Sex,")
                    .replace("Table I: Gender ID", "Table 1: Gender"))
    layout = load_paper_layout(paper_layout_path(workspace_dir))
    result = yamlio.load(REPO / "tests" / "fixtures" / "results_v1" / "smoke" / "mfcc" / "gender" / "en" / "seed0.json")
    tables = build_tables([result], published=load_published(), profile="smoke", n_boot=10, layout=layout)
    md = render_markdown(next(t for t in tables if t.name == "table1_gender"))
    assert md.startswith("# Table 1: Gender (F1 and UAR, %)") and "| **Tiny models**" in md and "Sex-En F1" in md
