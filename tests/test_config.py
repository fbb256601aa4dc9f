"""Strict config: unknown keys (did-you-mean), duplicate keys, missing task, wrong types, env vars,
typed overrides, registries, and `bench validate` reporting every problem at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import yamlio
from harness.config import Workspace, parse_overrides, parse_value
from harness.errors import ConfigError, DuplicateNameError, UnknownNameError
from harness.registry import Registry
from tests.conftest import REPO


def test_duplicate_key_is_an_error_naming_both_lines() -> None:
    with pytest.raises(yamlio.YamlError, match=r"duplicate key 'lr' \(first defined on line 1\)"):
        yamlio.loads("lr: 1\nbatch: 2\nlr: 3\n", where="x.yaml")


def test_python_tags_are_refused() -> None:
    with pytest.raises(yamlio.YamlError, match="only plain YAML"):
        yamlio.loads("a: !!python/object/apply:os.system ['echo pwned']\n")


def test_env_expansion_with_default_and_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_X", "/data")
    monkeypatch.delenv("BENCH_UNSET", raising=False)
    assert yamlio.loads("a: ${BENCH_X}/c\nb: ${BENCH_UNSET:-dflt}\n") == {"a": "/data/c", "b": "dflt"}
    with pytest.raises(yamlio.YamlError, match="BENCH_UNSET is not set"):
        yamlio.loads("a: ${BENCH_UNSET}\n")


@pytest.mark.parametrize("text,value", [("1e-4", 1e-4), ("3", 3), ("true", True), ("null", None),
                                        ("[0, 1]", [0, 1]), ("adam", "adam"), ("__import__('os')", "__import__('os')")])
def test_typed_override_values_never_eval(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_overrides_scopes() -> None:
    out = parse_overrides(["training.lr=1e-4", "profile.seeds=[0,1]", "upstream.args.n_mfcc=13"])
    assert out["downstream"] == {"training": {"lr": 1e-4}}
    assert out["profile"] == {"seeds": [0, 1]}
    assert out["upstream"] == {"args": {"n_mfcc": 13}}


def test_repository_config_validates() -> None:
    problems = Workspace(REPO).validate()
    assert problems == [], "\n".join(p.render() for p in problems)


def test_validate_reports_all_problems_at_once(workspace_dir: Path) -> None:
    ds = workspace_dir / "downstreams"
    (ds / "gender.yaml").write_text((ds / "gender.yaml").read_text().replace("pool_window_s:", "pool_windw_s:"))
    (ds / "emotion.yaml").write_text((ds / "emotion.yaml").read_text().replace("task: emotion", "task: emotio"))
    (ds / "intent.yaml").write_text((ds / "intent.yaml").read_text().replace("batch_size: 32", "batch_size: many"))
    (ds / "topic.yaml").write_text((ds / "topic.yaml").read_text().replace("head: bilstm", "head: bilstn"))
    problems = Workspace(workspace_dir).validate()
    text = "\n".join(p.render() for p in problems)
    assert "pool_windw_s" in text and "Did you mean 'pool_window_s'" in text
    assert "'emotio'" in text and "Did you mean 'emotion'" in text
    assert "training.batch_size" in text and "'many'" in text
    assert "'bilstn'" in text and "Did you mean 'bilstm'" in text
    for p in problems:
        assert p.where and p.key and p.expected and p.found


def test_unknown_key_in_profile_has_did_you_mean(workspace_dir: Path) -> None:
    b = workspace_dir / "benchmark.yaml"
    b.write_text(b.read_text().replace("    seeds: [0, 1]\n", "    sedes: [0, 1]\n", 1))
    problems = Workspace(workspace_dir).validate()
    assert any("sedes" in p.key and "Did you mean 'seeds'" in p.hint for p in problems), problems


def test_upstream_downstreams_restricts_cells_and_is_validated(workspace_dir: Path) -> None:
    from harness.matrix.select import cells_of

    ws = Workspace(workspace_dir)
    _, prof = ws.profile("embedded")
    assert prof.upstream_downstreams == {"whisper_tiny_en@random": ["gender", "emotion", "intent"]}
    twin = {(c.downstream, c.language) for c in cells_of(ws, "embedded", prof) if c.upstream == "whisper_tiny_en@random"}
    assert twin == {("gender", "en"), ("emotion", "en"), ("intent", "en")}
    real = {c.downstream for c in cells_of(ws, "embedded", prof) if c.upstream == "whisper_tiny_en"}
    assert {"intent", "word_discrimination", "emotion_discrimination"} <= real
    b = workspace_dir / "benchmark.yaml"
    b.write_text(b.read_text().replace("whisper_tiny_en@random: [gender, emotion, intent]}", "whisper_tiny_en@random: [gender, emotoin, intent]}"))
    problems = Workspace(workspace_dir).validate()
    assert any("upstream_downstreams" in p.key and "Did you mean 'emotion'" in p.hint for p in problems), problems
    b.write_text(b.read_text().replace("upstream_languages: {wavlm_base_plus@random: [en]",
                                       "upstream_languages: {wavlm_base_plus@randm: [en]"))
    problems = Workspace(workspace_dir).validate()
    assert any(p.key == "profiles.embedded.upstream_languages.wavlm_base_plus@randm"
               and "Did you mean 'wavlm_base_plus@random'" in p.hint for p in problems), problems


def test_card_args_must_bind_to_adapter(workspace_dir: Path) -> None:
    card = workspace_dir / "upstreams" / "cards" / "mfcc.yaml"
    card.write_text(card.read_text().replace("n_mfcc: 23", "n_mfc: 23"))
    problems = Workspace(workspace_dir).validate()
    assert any(p.key == "args.n_mfc" and "n_mfcc" in p.hint for p in problems), problems


def test_unknown_names_get_did_you_mean(workspace_dir: Path) -> None:
    ws = Workspace(workspace_dir)
    with pytest.raises(UnknownNameError, match="Did you mean 'mfcc'"):
        ws.card("mfc")
    with pytest.raises(UnknownNameError, match="Did you mean 'gender'"):
        ws.downstream("gendre")
    with pytest.raises(UnknownNameError, match="unknown task 'emotoin'"):
        ws.task("emotoin")


def test_duplicate_card_name_names_both_sources(workspace_dir: Path) -> None:
    user = workspace_dir / ".bench" / "cards"
    user.mkdir(parents=True)
    (user / "mfcc.yaml").write_text("adapter: mfcc\n")
    with pytest.raises(DuplicateNameError, match="upstreams/cards/mfcc.yaml.*cards/mfcc.yaml"):
        Workspace(workspace_dir).card_files()


def test_registry_duplicate_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import registry

    fake = (registry._EP("mfcc", "thirdparty:Up", "thirdparty"),)
    monkeypatch.setattr(registry, "_entry_points", lambda group: fake)
    reg = Registry("adapter", {"mfcc": "upstreams.mfcc:MFCCUpstream"}, entry_point_group="g")
    with pytest.raises(DuplicateNameError, match="built-in table.*thirdparty"):
        reg.names()


def test_registry_entry_point_adds_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import registry

    monkeypatch.setattr(registry, "_entry_points", lambda group: (registry._EP("mine", "upstreams.mfcc:MFCCUpstream", "pkg"),))
    reg = Registry("adapter", {}, entry_point_group="g")
    assert reg.names() == ["mine"]
    assert reg.load("mine").__name__ == "MFCCUpstream"


def test_profile_override_is_validated(workspace_dir: Path) -> None:
    ws = Workspace(workspace_dir, parse_overrides(["profile.seeds=oops"]))
    with pytest.raises(ConfigError, match="seeds"):
        ws.profile("embedded")


def test_downstream_resolution_order(workspace_dir: Path) -> None:
    ws = Workspace(workspace_dir, parse_overrides(["training.lr=0.5"]))
    rd = ws.resolve_downstream("emotion", profile="embedded", word_level=True)
    assert rd.head_args["pooling"] == "sum"  # word-level recipe
    assert rd.head_args["hidden_size"] == 32  # profile override
    assert rd.training.lr == 0.5  # CLI override wins


def test_help_and_ls_do_not_import_torch() -> None:
    code = ("import sys; from harness.cli import main\n"
            "for argv in (['ls', 'upstreams'], ['ls', 'tasks'], ['ls', 'downstreams'], ['ls', 'heads']):\n"
            "    main(argv)\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_cli_validate_exit_code(workspace_dir: Path) -> None:
    ds = workspace_dir / "downstreams" / "gender.yaml"
    ds.write_text(ds.read_text() + "lr: 3\n")
    out = subprocess.run([sys.executable, "-m", "harness.cli", "--root", str(workspace_dir), "validate"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "unknown key 'lr'" in out.stderr
