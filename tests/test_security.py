"""Running a contributed model (a card, a checkpoint, a YAML file) cannot run someone else's code,
and a run writes only where it was told to.

- Source checks (AST, over harness/ and upstreams/): every ``torch.load`` passes
  ``weights_only=True``; no ``eval`` / ``exec`` / ``compile``, no pickle / marshal / shelve /
  ``yaml.load`` without the safe loader, no ``os.system`` or ``shell=True``.
- Checkpoints whose pickle would run code (a real payload: it creates a marker folder when
  unpickled, which the first test proves) are refused with a message, and the marker never
  appears: a small-model checkpoint (``--set upstream.args.checkpoint``, a user card, the CLI),
  an s3prl ``*_local`` checkpoint (also with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, under which
  s3prl's own loader runs the payload, as a test shows), and a Hugging Face ``pytorch_model.bin``.
- YAML: only plain data (no tags, no anchors or aliases, no expansion bombs).
- A card's ``test.build`` cannot name arbitrary code.
- A real matrix run with every output path in a temporary folder, ``HOME``, ``TMPDIR`` and the
  working directory elsewhere creates or modifies files only under the configured folders.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import yamlio
from harness.config import Workspace, parse_overrides
from harness.errors import BenchError
from harness.safeload import UnsafeCheckpointError
from tests.bench_process import BenchSandbox, describe, snapshot
from tests.conftest import REPO

SOURCE_DIRS = ("harness", "upstreams")


# --------------------------------------------------------------------------- source checks
def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func: ast.expr) -> str:
    """``torch.load`` / ``eval`` / ``yaml.load`` ... as written (``""`` for anything else)."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        base = _name(func.value)
        return f"{base}.{func.attr}" if base else f".{func.attr}"
    return ""


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "pickle.load", "pickle.loads", "cPickle.load",
                   "marshal.load", "marshal.loads", "shelve.open", "dill.load", "dill.loads", "joblib.load",
                   "cloudpickle.load", "cloudpickle.loads", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all",
                   "os.system", "os.popen", "torch.jit.load", "torch.package.PackageImporter"}


def call_problem(call: ast.Call) -> str:
    """Why ``call`` is unsafe ("" when it is not)."""
    name = _name(call.func)
    if name in FORBIDDEN_CALLS:
        return f"{name}(...)"
    if name == "torch.load" and not _is_true(_keyword(call, "weights_only")):
        return "torch.load without weights_only=True"
    if name == "yaml.load" and _name(_keyword(call, "Loader") or ast.Constant(None)) not in (
            "_StrictLoader", "yaml.SafeLoader", "yaml.CSafeLoader"):
        return "yaml.load without a safe loader"
    if name.endswith("np.load") and _is_true(_keyword(call, "allow_pickle")):
        return "np.load(allow_pickle=True)"
    if name.startswith("subprocess.") and _is_true(_keyword(call, "shell")):
        return f"{name}(shell=True)"
    return ""


def source_problems() -> list[str]:
    """Every unsafe call in harness/ and upstreams/, as ``file:line: why``."""
    files = [p for d in SOURCE_DIRS for p in sorted((REPO / d).rglob("*.py"))]
    assert len(files) > 40, files
    problems = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        problems += [f"{path.relative_to(REPO)}:{c.lineno}: {call_problem(c)}" for c in _calls(tree) if call_problem(c)]
    return problems


def test_source_loads_weights_only_and_never_evaluates_input() -> None:
    """No torch.load without weights_only=True, no eval/exec/compile (method calls such as
    ``module.eval()`` are not the builtin), no unsafe deserialiser, no shell, in harness/ and upstreams/."""
    assert source_problems() == []


def test_the_source_check_finds_what_it_looks_for() -> None:
    """The checker flags each unsafe form and passes the safe ones (so an empty result means something)."""
    code = ("import torch, yaml, pickle, os, subprocess\ntorch.load('x')\ntorch.load('x', weights_only=False)\n"
            "eval('1')\nexec('1')\nyaml.load('a')\npickle.loads(b'')\nos.system('x')\n"
            "subprocess.run('x', shell=True)\nmodel.eval()\ntorch.load('x', weights_only=True)\n"
            "yaml.load('a', Loader=yaml.SafeLoader)\nnp.load('x', allow_pickle=True)\n")
    assert [c.lineno for c in _calls(ast.parse(code)) if call_problem(c)] == [2, 3, 4, 5, 6, 7, 8, 9, 13]


# --------------------------------------------------------------------------- malicious checkpoints
class Payload:
    """Unpickled, this calls ``os.mkdir(marker)``: code that a checkpoint must never get to run."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path]:
    """(a checkpoint whose unpickling runs ``os.mkdir(marker)``, the marker path, which does not exist).

    It looks like a small-model checkpoint; the payload sits where a config would be."""
    import torch

    path, marker = tmp_path / "evil.pt", tmp_path / "PWNED"
    torch.save({"format": "speech-bench/small-model", "format_version": 1, "model": "siamese",
                "cfg": {"x": Payload(marker)}, "model_state_dict": {}}, path)
    assert path.is_file() and not marker.exists()
    return path, marker


def test_the_payload_runs_code_when_unpickled(evil: tuple[Path, Path]) -> None:
    """Sanity: loading the file the unsafe way (weights_only=False) does run its code."""
    path, marker = evil
    code = "import sys, torch; torch.load(sys.argv[1], weights_only=False)"
    subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120)
    assert marker.is_dir()


def _workspace(root: Path, *overrides: str) -> Workspace:
    return Workspace(root, parse_overrides(overrides))


def test_small_model_checkpoint_via_set_is_refused(evil: tuple[Path, Path], workspace_dir: Path) -> None:
    """``--set upstream.args.checkpoint=evil.pt`` on the siamese card: refused, code not run."""
    from harness.features.upstream import build_upstream

    path, marker = evil
    ws = _workspace(workspace_dir, f"upstream.args.checkpoint={path}")
    with pytest.raises(UnsafeCheckpointError, match=r"refused to load small-model checkpoint .*posix.mkdir"):
        build_upstream(ws.card("siamese"), language="en", workspace=ws)
    assert not marker.exists()


def test_small_model_checkpoint_in_a_user_card_is_refused(evil: tuple[Path, Path], workspace_dir: Path) -> None:
    """A contributed card (in the user cards folder) pointing at the file: refused, code not run."""
    from harness.features.upstream import build_upstream

    path, marker = evil
    cards = workspace_dir / ".bench" / "cards"
    cards.mkdir(parents=True)
    (cards / "contributed.yaml").write_text(f"adapter: lstm\nargs: {{model: siamese, checkpoint: '{path}'}}\n")
    ws = Workspace(workspace_dir)
    assert ws.validate() == []
    with pytest.raises(UnsafeCheckpointError, match="unpickling it could run code"):
        build_upstream(ws.card("contributed"), language="en", workspace=ws)
    assert not marker.exists()


def test_small_model_checkpoint_via_the_cli_is_refused(evil: tuple[Path, Path], tmp_path: Path) -> None:
    """`bench check-upstream siamese --set upstream.args.checkpoint=evil.pt` in a fresh process:
    the build fails with the refusal, exit code 1, no marker."""
    path, marker = evil
    sb = BenchSandbox.create(tmp_path / "sb")
    proc = sb.run("check-upstream", "siamese", "--set", f"upstream.args.checkpoint={path}", timeout=300)
    assert proc.returncode == 1 and "refused to load small-model checkpoint" in proc.stdout, describe(proc)
    assert not marker.exists()


@pytest.mark.parametrize("force_unsafe", [False, True], ids=["default", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"])
def test_s3prl_local_checkpoint_is_refused(evil: tuple[Path, Path], workspace_dir: Path, force_unsafe: bool,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``wavlm_local`` card with the file as ``path_or_url``: the adapter loads it with
    weights_only=True before s3prl sees it and refuses it, even when the environment asks torch
    for unsafe loads; the environment is restored afterwards."""
    from harness.features.upstream import build_upstream

    path, marker = evil
    if force_unsafe:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    ws = _workspace(workspace_dir, f"upstream.args.path_or_url={path}")
    with pytest.raises(UnsafeCheckpointError, match="refused to load s3prl checkpoint"):
        build_upstream(ws.card("wavlm_local"), workspace=ws)
    assert not marker.exists()
    assert os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD") == ("1" if force_unsafe else None)


def test_s3prl_own_loader_would_run_the_payload(evil: tuple[Path, Path]) -> None:
    """Why the adapter checks first: s3prl's wavlm expert calls ``torch.load(ckpt)`` without
    ``weights_only``; with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (or torch < 2.6) that runs the code."""
    path, marker = evil
    code = "import sys\nfrom s3prl.upstream.wavlm.expert import UpstreamExpert\nUpstreamExpert(sys.argv[1])\n"
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=300, env=env)
    assert marker.is_dir(), "s3prl no longer unpickles unsafely: update docs/security.md"


def test_hf_pytorch_model_bin_is_refused(evil: tuple[Path, Path], workspace_dir: Path, tmp_path: Path) -> None:
    """A Hugging Face folder whose ``pytorch_model.bin`` is the payload: transformers loads .bin
    files with weights_only=True; the adapter reports the refusal as such, and no code runs."""
    from harness.features.upstream import build_upstream
    from harness.testing import write_tiny_hf

    path, marker = evil
    folder = write_tiny_hf(tmp_path / "hf", family="wav2vec2")
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(path.read_bytes())
    ws = _workspace(workspace_dir, f"upstream.args.model_id={folder}")
    with pytest.raises(UnsafeCheckpointError, match=r"refused to load the weights in .*hf"):
        build_upstream(ws.card("wav2vec2_base"), workspace=ws)
    assert not marker.exists()


def test_card_test_builder_cannot_name_arbitrary_code(workspace_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A card's ``test.build`` naming a module outside harness.testing and the adapters' modules
    is a validation problem, and the contract fixture refuses to import it."""
    import yaml

    from harness.testing import contract_card

    marker = tmp_path / "IMPORTED"
    (tmp_path / "sneaky.py").write_text(f"import os\nos.mkdir({str(marker)!r})\ndef build(**kw):\n    return {{}}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = workspace_dir / "upstreams" / "cards" / "mfcc.yaml"
    card = yamlio.load(path, expand=False)
    card.setdefault("test", {})["build"] = "sneaky:build"
    path.write_text(yaml.safe_dump(card))
    ws = Workspace(workspace_dir)
    assert any(p.key == "test.build" and "sneaky:build" in p.found for p in ws.validate())
    with pytest.raises(BenchError, match="not in a trusted module"):
        contract_card(ws.card("mfcc"), out_dir=tmp_path / "out")
    assert not marker.exists()


# --------------------------------------------------------------------------- YAML
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


@pytest.mark.parametrize("text,phrase", [
    ("a: !!python/object/apply:os.mkdir ['/tmp/x']\n", "python/object/apply"),
    ("a: !!python/name:os.system\n", "python/name"),
    ("a: !!python/module:os\n", "python/module"),
    ("a: !!binary aGVsbG8=\n", "binary"),
    ("a: !!set {x, y}\n", "set"),
    ("a: !!omap [{x: 1}]\n", "omap"),
    ("a: !!timestamp 2024-01-01\n", "timestamp"),
    ("a: !custom thing\n", "'!custom'"),
    ("base: &b {lr: 1}\nother: *b\n", "anchor &b"),
    ("x:\n  <<: {lr: 1}\n", "merge"),
    (BOMB, "anchor &a"),
    ("[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
], ids=["python-apply", "python-name", "python-module", "binary", "set", "omap", "timestamp", "custom-tag",
        "alias", "merge-key", "billion-laughs", "deep-nesting"])
def test_yaml_refuses_anything_but_plain_data(text: str, phrase: str) -> None:
    """Each is refused at once (the bomb does not expand), with the file name and the reason."""
    t0 = time.perf_counter()
    with pytest.raises(yamlio.YamlError) as err:
        yamlio.loads(text, where="card.yaml")
    assert time.perf_counter() - t0 < 2.0
    assert "card.yaml" in str(err.value) and phrase in str(err.value), str(err.value)


def test_yaml_plain_data_still_loads() -> None:
    """Plain data is unchanged by the restrictions: dates stay strings, explicit core tags work."""
    text = "name: x\nwhen: 2024-05-01\nseeds: [0, 1]\nlr: 1.0e-3\nok: true\nnone: null\nn: !!str 3\n"
    assert yamlio.loads(text) == {"name": "x", "when": "2024-05-01", "seeds": [0, 1], "lr": 1e-3, "ok": True,
                                  "none": None, "n": "3"}


def test_python_tag_in_a_card_file_is_a_validation_problem(workspace_dir: Path, tmp_path: Path) -> None:
    """A card carrying a Python tag never gets constructed: `validate` names the file, nothing runs."""
    marker = tmp_path / "PWNED"
    (workspace_dir / "upstreams" / "cards" / "evil.yaml").write_text(
        f"adapter: mfcc\nargs: !!python/object/apply:os.mkdir ['{marker}']\n")
    problems = Workspace(workspace_dir).validate()
    assert any("evil.yaml" in p.where and "python/object/apply" in p.found for p in problems), problems
    assert not marker.exists()


# --------------------------------------------------------------------------- where a run writes
def _audit(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Run ``args`` with every output path, HOME, TMPDIR and the working directory in separate
    folders; every file created or changed must be under the five configured output folders."""
    sb = BenchSandbox.create(tmp_path / "sb")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    before = snapshot(tmp_path)
    proc = sb.run(*args, env={"TMPDIR": str(tmpdir)})
    assert proc.returncode == 0, describe(proc)
    after = snapshot(tmp_path)
    changed = sorted(p for p, stamp in after.items() if before.get(p) != stamp)
    removed = sorted(set(before) - set(after))
    allowed = tuple(f"{d.relative_to(tmp_path).as_posix()}/" for d in sb.paths.values())
    assert changed and removed == []
    assert [p for p in changed if not p.startswith(allowed)] == []
    for folder in (sb.home, sb.cwd, tmpdir):
        assert list(folder.iterdir()) == [], f"{folder} was written to"


def test_a_run_writes_only_into_the_configured_folders(tmp_path: Path) -> None:
    """The MFCC gender cell of the smoke profile (corpus synthesis, extraction, training, the
    capacity plot, leaderboards): nothing outside cache / results / models / cards / leaderboards,
    nothing in HOME (matplotlib's font cache goes to the cache folder), TMPDIR or the working directory."""
    _audit(tmp_path, ("matrix", "--profile", "smoke", "--no-progress", "--only", "upstream=mfcc,downstream=gender"))


@pytest.mark.slow
def test_the_whole_smoke_profile_writes_only_into_the_configured_folders(tmp_path: Path) -> None:
    """The same audit for the whole smoke profile (small-model training, its checkpoint and card)."""
    _audit(tmp_path, ("matrix", "--profile", "smoke", "--no-progress"))
