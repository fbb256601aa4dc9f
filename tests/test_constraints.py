"""constraints.txt pins what the README's commands install, and both commands use it."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO


def _command(marker: str) -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split(f"<!-- {marker} -->", 1)[1].split(f"<!-- /{marker} -->", 1)[0]


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not NAME==VERSION"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_both_readme_commands_install_under_the_constraints() -> None:
    for marker in ("main-command", "test-command"):
        command = _command(marker)
        installs = re.findall(r"pip install ([^&]*)", command)
        assert len(installs) == 2, command  # torch first, then the project
        for args in installs:
            assert args.startswith("-c constraints.txt "), (marker, args)


def test_constraints_pin_every_requirement_of_the_commands_extras_within_pyproject() -> None:
    """Each direct requirement of the project and of the extras the commands install has a pin that
    pyproject.toml accepts, and torch/torchaudio are pinned at the versions the commands name."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = _pins()
    for marker in ("main-command", "test-command"):
        command = _command(marker)
        extras = re.search(r'-e "\.\[([^\]]*)\]"', command)
        assert extras is not None, command
        lines = list(project["dependencies"])
        for extra in extras.group(1).split(","):
            lines += project["optional-dependencies"][extra]
        for line in lines:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            assert name in pins, f"{req.name} ({marker}) has no pin in constraints.txt: rerun .ci/constraints.py"
            assert req.specifier.contains(pins[name], prereleases=True), (line, str(pins[name]))
        for name, version in re.findall(r"(torch|torchaudio)==(\S+)", command):
            assert pins[name] == Version(version), (marker, name, version, pins[name])
