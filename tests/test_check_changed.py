"""``bench check-upstream --changed``: on a real git repository, what a contributor's branch changed is
validated and run through the upstream contract.

The repository is a copy of this one's code and YAML (harness/, upstreams/, tasks/, downstreams/,
reference/, benchmark.yaml) committed on ``main`` in a temporary folder; each test clones it, makes
a branch and runs ``python -m harness.cli`` in the clone with the clone's code on ``PYTHONPATH``
(so a changed adapter module is the one imported), offline, with an empty Hugging Face cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import BenchError
from harness.features.changed import adapter_files, changed_files
from tests.conftest import REPO

COPIED = ("harness", "upstreams", "tasks", "downstreams", "reference", "benchmark.yaml", ".gitignore")
TINY_ARCH = """\
  arch:
    config_class: WavLMConfig
    hidden_size: 32
    num_hidden_layers: 2
    num_attention_heads: 2
    intermediate_size: 64
    conv_dim: [32, 32, 32, 32, 32, 32, 32]
    conv_stride: [5, 2, 2, 2, 2, 2, 2]
    conv_kernel: [10, 3, 3, 3, 3, 2, 2]
    num_conv_pos_embeddings: 16
    num_conv_pos_embedding_groups: 4
    feat_extract_norm: layer
    do_stable_layer_norm: true
    conv_bias: true
    num_buckets: 32
    max_bucket_distance: 128
"""
META = """\
revision: "1"
meta:
  display: WavLM-tiny
  family: wavlm
  group: other
  params: 1.0e5
  languages: [en]
  reference: "a contributor's test card"
  weights: "https://huggingface.co/example/wavlm-tiny"
test: {min_input_s: 0.05, padding_invariant: true}
"""


def card_text(*, extra_arg: str = "") -> str:
    """A WavLM card whose weights are nowhere here (so the contract runs it through @random)."""
    return f"adapter: hf\nargs:\n  model_id: example/wavlm-tiny\n{extra_arg}{TINY_ARCH}{META}"


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", "-c", "user.name=Contributor", "-c", "user.email=c@example.org", *args],
                          cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repository's code and YAML committed on ``main`` of a new git repository."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed (Debian: apt-get install git)")
    root = tmp_path_factory.mktemp("origin") / "repo"
    root.mkdir()
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(src, root / name)
    git("init", "--quiet", "--initial-branch=main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "--quiet", "-m", "base", cwd=root)
    return root


@pytest.fixture
def clone(origin: Path, tmp_path: Path) -> Path:
    """A clone of ``origin`` (``main`` and ``origin/main``) on a new branch ``contrib``."""
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "--quiet", str(origin), str(work)], check=True)
    git("checkout", "--quiet", "-b", "contrib", cwd=work)
    return work


def bench(clone: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``bench ARGS`` run in ``clone`` with the clone's code, offline, an empty HF cache and HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "HF_"))}
    env.update(PYTHONPATH=str(clone), HOME=str(home), HF_HOME=str(home / "hf"), HF_HUB_CACHE=str(home / "hf" / "hub"),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1",
               XDG_CACHE_HOME=str(home / "cache"), MPLCONFIGDIR=str(home / "mpl"), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def shown(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-3000:]}"


def rows(stdout: str, item: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(item + " ")]


# --------------------------------------------------------------------------- cards
def test_a_card_with_a_typod_argument_fails_with_did_you_mean(clone: Path, tmp_path: Path) -> None:
    (clone / "upstreams" / "cards" / "wavlm_tiny.yaml").write_text(card_text(extra_arg="  normalise: true\n"))
    git("add", "-A", cwd=clone)
    git("commit", "--quiet", "-m", "add wavlm_tiny", cwd=clone)
    proc = bench(clone, "check-upstream", "--changed", home=tmp_path / "home")
    assert proc.returncode == 1, shown(proc)
    assert "1 committed, 0 uncommitted, 0 untracked" in proc.stdout, shown(proc)
    assert "cards: wavlm_tiny (committed)" in proc.stdout
    (validate,) = rows(proc.stdout, "upstreams/cards/wavlm_tiny.yaml")
    assert "FAIL" in validate and "args.normalise" in validate and "Did you mean 'normalize'?" in validate, shown(proc)
    (contract,) = rows(proc.stdout, "card wavlm_tiny")
    assert "skip" in contract and "fix its bench validate problems first" in contract
    assert proc.stdout.rstrip().endswith("=> 1 failure(s): fix them and run the command again")


def test_a_correct_card_passes_through_random_init(clone: Path, tmp_path: Path) -> None:
    (clone / "upstreams" / "cards" / "wavlm_tiny.yaml").write_text(card_text())
    proc = bench(clone, "check-upstream", "--changed", "main", home=tmp_path / "home")
    assert proc.returncode == 0, shown(proc)
    assert "0 committed, 0 uncommitted, 1 untracked" in proc.stdout and "wavlm_tiny (untracked)" in proc.stdout
    (validate,) = rows(proc.stdout, "workspace")
    cards = len(list((REPO / "upstreams" / "cards").glob("*.yaml"))) + 1
    assert "PASS" in validate and f"{cards} upstream cards" in validate, shown(proc)
    (contract,) = rows(proc.stdout, "card wavlm_tiny")
    assert "contract (wavlm_tiny@random)" in contract and "PASS" in contract, shown(proc)
    assert "offline through @random: weights absent (example/wavlm-tiny)" in contract
    assert "6 checks pass" in contract
    assert proc.stdout.rstrip().endswith("=> OK")


def test_the_contract_of_a_changed_card_can_fail(clone: Path, tmp_path: Path) -> None:
    """A card that validates but breaks the contract: it promises a shorter input than the model takes."""
    text = card_text().replace("min_input_s: 0.05", "min_input_s: 0.01")
    (clone / "upstreams" / "cards" / "wavlm_tiny.yaml").write_text(text)
    proc = bench(clone, "check-upstream", "--changed", home=tmp_path / "home")
    assert proc.returncode == 1, shown(proc)
    (contract,) = rows(proc.stdout, "card wavlm_tiny")
    assert "contract: min_input" in contract and "FAIL" in contract and "min_input_s=0.01" in contract, shown(proc)


# --------------------------------------------------------------------------- adapters
BATCH_DEPENDENT = ("            frames.append(self.features(wav[:n]))",
                   "            frames.append(self.features(wav)[: (n - self.win_samples) // self.hop_samples + 1])")


def test_a_changed_adapter_runs_the_contract_of_its_cards(clone: Path, tmp_path: Path) -> None:
    """A committed, harmless edit of upstreams/mfcc.py runs the contract of both MFCC cards and passes; an
    uncommitted edit that computes features over the padded row (deltas and context then see the
    padding) fails the batch-invariance check of ``mfcc`` (deltas, context) and not of ``mfcc13`` (neither)."""
    module = clone / "upstreams" / "mfcc.py"
    module.write_text(module.read_text() + "\n# a contributor's edit\n")
    git("commit", "--quiet", "-am", "touch the MFCC adapter", cwd=clone)
    proc = bench(clone, "check-upstream", "--changed", home=tmp_path / "home")
    assert proc.returncode == 0, shown(proc)
    assert "adapters: mfcc (upstreams/mfcc.py changed (committed))" in proc.stdout, shown(proc)
    for card in ("mfcc", "mfcc13"):
        (row,) = rows(proc.stdout, f"card {card}")
        assert "PASS" in row and "adapter mfcc: upstreams/mfcc.py changed" in row and "offline: as is" in row

    text = module.read_text()
    assert BATCH_DEPENDENT[0] in text, "upstreams/mfcc.py changed: update BATCH_DEPENDENT"
    module.write_text(text.replace(*BATCH_DEPENDENT))
    broken = bench(clone, "check-upstream", "--changed", home=tmp_path / "home")
    assert broken.returncode == 1, shown(broken)
    assert "adapters: mfcc (upstreams/mfcc.py changed (committed + uncommitted))" in broken.stdout
    assert "1 committed, 1 uncommitted" in broken.stdout
    failed = rows(broken.stdout, "card mfcc")
    assert any("contract: batch_invariance" in r and "FAIL" in r for r in failed), shown(broken)
    (mfcc13,) = rows(broken.stdout, "card mfcc13")  # no deltas, no context: each frame sees only its window
    assert "PASS" in mfcc13, shown(broken)


NEW_ADAPTER = '''"""A contributor's adapter: MFCC with 13 coefficients and no context, by default."""

from .mfcc import MFCCUpstream


class MFCC13Upstream(MFCCUpstream):
    def __init__(self, *, n_mfcc: int = 13, context: int = 0):
        super().__init__(n_mfcc=n_mfcc, deltas=False, context=context)
'''


def test_a_new_adapter_without_a_card_is_checked_as_module_class(clone: Path, tmp_path: Path) -> None:
    """CONTRIBUTING section 2 before the card exists: a new module and its registry line."""
    (clone / "upstreams" / "mfcc_plain.py").write_text(NEW_ADAPTER)
    registry = clone / "harness" / "registry.py"
    line = '    "mfcc": "upstreams.mfcc:MFCCUpstream",\n'
    assert line in registry.read_text()
    registry.write_text(registry.read_text().replace(line, line + '    "mfcc_plain": "upstreams.mfcc_plain:MFCC13Upstream",\n'))
    proc = bench(clone, "check-upstream", "--changed", home=tmp_path / "home")
    assert proc.returncode == 0, shown(proc)
    assert "adapters: mfcc_plain (upstreams/mfcc_plain.py changed (untracked))" in proc.stdout, shown(proc)
    (row,) = rows(proc.stdout, "adapter mfcc_plain")
    assert "PASS" in row and "no card uses it, checked as upstreams.mfcc_plain:MFCC13Upstream" in row, shown(proc)


NEEDS_ARGUMENTS = '''"""A contributor's adapter that cannot be built without knowing its file."""

from .mfcc import MFCCUpstream


class FileMFCC(MFCCUpstream):
    def __init__(self, *, path: str):
        super().__init__()
        self.path = path
'''


def test_a_new_adapter_that_needs_arguments_needs_a_card(clone: Path, tmp_path: Path) -> None:
    """New on the branch, no card, a required argument: nothing can run its contract, so it fails and
    says to add a card. An adapter that already existed (``hear``: its tests build it on a tiny
    HEAR module) is skipped with the reason when its module changes."""
    (clone / "upstreams" / "mfcc_file.py").write_text(NEEDS_ARGUMENTS)
    registry = clone / "harness" / "registry.py"
    line = '    "mfcc": "upstreams.mfcc:MFCCUpstream",\n'
    registry.write_text(registry.read_text().replace(line, line + '    "mfcc_file": "upstreams.mfcc_file:FileMFCC",\n'))
    hear = clone / "upstreams" / "hear.py"
    hear.write_text(hear.read_text() + "\n# a contributor's edit\n")
    proc = bench(clone, "check-upstream", "--changed", home=tmp_path / "home")
    assert proc.returncode == 1, shown(proc)
    (new,) = rows(proc.stdout, "adapter mfcc_file")
    assert "FAIL" in new and "upstreams.mfcc_file:FileMFCC needs path: add a card" in new, shown(proc)
    (old,) = rows(proc.stdout, "adapter hear")
    assert "skip" in old and "cannot be built without module" in old, shown(proc)
    assert proc.stdout.rstrip().endswith("=> 1 failure(s): fix them and run the command again")


def test_an_adapter_counts_the_modules_it_imports() -> None:
    files = {p.relative_to(REPO).as_posix() for p in adapter_files("upstreams.hf")}
    assert {"upstreams/hf.py", "upstreams/base.py", "upstreams/hf_weights.py"} <= files
    assert all(f.startswith("upstreams/") for f in files), files
    assert {p.relative_to(REPO).as_posix() for p in adapter_files("upstreams.mfcc")} == {"upstreams/mfcc.py",
                                                                                       "upstreams/base.py"}


def test_a_module_every_adapter_imports_touches_every_adapter() -> None:
    """upstreams/base.py (the adapter contract's base class) changed: each built-in adapter counts, through it."""
    from harness.features.changed import ChangedFiles, changed_adapters
    from harness.registry import BUILTIN_ADAPTERS

    changes = ChangedFiles(toplevel=REPO, base="main", merge_base="0" * 40, committed=(),
                           uncommitted=("upstreams/base.py",), untracked=())
    found = changed_adapters(changes)
    assert set(BUILTIN_ADAPTERS) <= set(found), found
    assert found["hf"] == "upstreams/base.py changed (uncommitted, imported by upstreams.hf)"
    untouched = ChangedFiles(toplevel=REPO, base="main", merge_base="0" * 40, committed=("README.md",),
                             uncommitted=(), untracked=("upstreams/cards/new.yaml",))
    assert changed_adapters(untouched) == {}


def test_changed_and_removed_cards_are_found_in_the_cards_folder(clone: Path) -> None:
    from harness.config import Workspace
    from harness.features.changed import changed_cards

    (clone / "upstreams" / "cards" / "mfcc13.yaml").unlink()
    (clone / "upstreams" / "cards" / "new.yaml").write_text("adapter: mfcc\n")
    (clone / "tasks" / "new.yaml").write_text("kind: x\n")  # not a card
    cards = changed_cards(Workspace(clone), changed_files(clone, base="main"))
    assert {name: source for name, (_, source) in cards.items()} == {"mfcc13": "uncommitted", "new": "untracked"}
    assert not cards["mfcc13"][0].exists()


# --------------------------------------------------------------------------- git and errors
def test_the_pull_request_form_compares_with_the_remote_branch(clone: Path) -> None:
    """CI runs ``--changed origin/BASE`` in a fresh clone: committed, uncommitted and untracked are told apart."""
    (clone / "upstreams" / "cards" / "a.yaml").write_text("adapter: mfcc\n")
    git("add", "-A", cwd=clone)
    git("commit", "--quiet", "-m", "a", cwd=clone)
    (clone / "upstreams" / "mfcc.py").write_text((clone / "upstreams" / "mfcc.py").read_text() + "\n")
    (clone / "upstreams" / "cards" / "b.yaml").write_text("adapter: mfcc\n")
    changes = changed_files(clone / "upstreams", base="origin/main")
    assert changes.toplevel.resolve() == clone.resolve()
    assert changes.committed == ("upstreams/cards/a.yaml",)
    assert changes.uncommitted == ("upstreams/mfcc.py",)
    assert changes.untracked == ("upstreams/cards/b.yaml",)
    assert changes.added == ("upstreams/cards/a.yaml", "upstreams/cards/b.yaml")  # mfcc.py existed at the base
    assert changes.merge_base == git("rev-parse", "origin/main", cwd=clone).strip()


def test_a_pull_request_merge_checkout_sees_the_branch_changes(clone: Path) -> None:
    """actions/checkout on a pull request checks out a merge commit of the branch into its base, detached."""
    (clone / "upstreams" / "cards" / "a.yaml").write_text("adapter: mfcc\n")
    git("add", "-A", cwd=clone)
    git("commit", "--quiet", "-m", "a", cwd=clone)
    git("checkout", "--quiet", "--detach", "origin/main", cwd=clone)
    git("merge", "--quiet", "--no-ff", "-m", "Merge pull request", "contrib", cwd=clone)
    changes = changed_files(clone, base="origin/main")
    assert (changes.committed, changes.uncommitted, changes.untracked) == (("upstreams/cards/a.yaml",), (), ())


def test_a_missing_base_is_a_clear_error(clone: Path) -> None:
    with pytest.raises(BenchError, match=r"no commit named 'mian'.* Did you mean 'main'\?.*git fetch origin main"):
        changed_files(clone, base="mian")


def test_a_folder_outside_git_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"is not in a git checkout.*bench check-upstream NAME"):
        changed_files(tmp_path, base="main")


def test_the_command_reports_git_errors_and_usage(clone: Path, tmp_path: Path) -> None:
    proc = bench(clone, "check-upstream", "--changed", "no-such-branch", home=tmp_path / "home")
    assert proc.returncode == 2 and "error: --changed no-such-branch: no commit named" in proc.stderr, shown(proc)
    both = bench(clone, "check-upstream", "mfcc", "--changed", home=tmp_path / "home")
    assert both.returncode == 2 and "not both" in both.stderr, shown(both)
    neither = bench(clone, "check-upstream", home=tmp_path / "home")
    assert neither.returncode == 2 and "not neither" in neither.stderr, shown(neither)
    by_name = bench(clone, "check-upstream", "mfcc13", home=tmp_path / "home")  # the one-card form still works
    assert by_name.returncode == 0 and by_name.stdout.rstrip().endswith("=> OK"), shown(by_name)
