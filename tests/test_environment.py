"""The pinned environment: one set of exact pins for pip and conda, and the README's
two commands are the ones the Makefile and CI run."""

from __future__ import annotations

import re
import tomllib

import pytest

PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = PIN.match(line.strip())
        if match is None:
            raise AssertionError(f"not an exact pin (name==version): {line!r}")
        pins[_normalise(match.group(1))] = match.group(2)
    return pins


@pytest.fixture(scope="module")
def pyproject(root):
    return tomllib.loads((root / "pyproject.toml").read_text())


def _environment_pins(root) -> dict[str, str]:
    text = (root / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    lines = [ln.strip()[2:] for ln in pip_section.splitlines() if ln.strip().startswith("- ")]
    return _pins([ln for ln in lines if not ln.startswith("-e")])


def test_direct_dependencies_are_exact_pins(pyproject):
    deps = (
        pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["dev"]
    )
    pins = _pins(deps)
    assert pins["torch"] == "2.13.0"
    assert pins["neurogym"] == "2.3.1"
    assert pins["nbgrader"] == "0.9.6"
    assert pins["jupyter-book"].split(".")[0] == "1", "jupyter-book must stay below 2"


def test_pip_and_conda_pin_the_same_versions(root, pyproject):
    deps = (
        pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["dev"]
    )
    assert _pins(deps) == _environment_pins(root)
    assert "python=3.11" in (root / "environment.yml").read_text()


def test_constraints_agree_with_direct_pins(root, pyproject):
    lines = [
        ln
        for ln in (root / "constraints.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    constraints = _pins(lines)
    deps = (
        pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["dev"]
    )
    for name, version in _pins(deps).items():
        assert constraints.get(name) == version, f"constraints.txt pins {name} differently"


def test_installed_versions_match_the_pins(pyproject):
    from importlib.metadata import version

    deps = (
        pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["dev"]
    )
    for name, pinned in _pins(deps).items():
        installed = version(name).split("+")[0]  # torch's CPU wheel is 2.13.0+cpu
        assert installed == pinned, f"{name}: installed {installed}, pinned {pinned}"


def _readme_commands(root) -> list[str]:
    text = (root / "README.md").read_text()
    section = text.split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", section, flags=re.S)
    return [ln.strip() for block in blocks for ln in block.splitlines() if ln.strip()]


def test_readme_has_exactly_two_setup_commands(root):
    commands = _readme_commands(root)
    assert commands == ["make book", "make test"], commands


def test_ci_runs_the_readme_test_command(root):
    ci = (root / ".ci" / "run").read_text()
    test_command = _readme_commands(root)[1]
    assert any(line.strip() == test_command for line in ci.splitlines()), ci
