"""Publishing: the GitHub Pages workflow builds the book with the README's own command
and deploys `_build/html`, on every push to main."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def readme_setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", section, flags=re.S)
    return [ln.strip() for block in blocks for ln in block.splitlines() if ln.strip()]


def readme_book_command() -> str:
    commands = [c for c in readme_setup_commands() if "book" in c.split()]
    assert len(commands) == 1, f"the README should give one book command: {commands}"
    return commands[0]


@pytest.fixture(scope="module")
def workflow() -> dict:
    assert WORKFLOW.is_file(), WORKFLOW
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(workflow) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _uses(workflow, action: str) -> list[dict]:
    return [s for s in _steps(workflow) if s.get("uses", "").split("@")[0] == action]


def test_runs_on_push_to_main_and_by_hand(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["branches"] == ["main"], triggers
    assert "workflow_dispatch" in triggers


def test_builds_with_exactly_the_readme_book_command(workflow):
    command = readme_book_command()
    runs = [line.strip() for s in _steps(workflow) for line in s.get("run", "").splitlines()]
    runs = [line for line in runs if line]
    assert runs == [command], f"the workflow runs {runs}; the README says {command!r}"


def test_uses_python_3_11(workflow):
    setups = _uses(workflow, "actions/setup-python")
    assert [str(s["with"]["python-version"]) for s in setups] == ["3.11"]


def test_uploads_the_built_html_and_deploys_it_to_pages(workflow):
    uploads = _uses(workflow, "actions/upload-pages-artifact")
    assert [s["with"]["path"] for s in uploads] == ["_build/html"]
    assert len(_uses(workflow, "actions/deploy-pages")) == 1
    assert workflow["permissions"]["pages"] == "write"
    assert workflow["permissions"]["id-token"] == "write"
    assert "group" in workflow["concurrency"]
    build_job = next(n for n, j in workflow["jobs"].items() if j in _jobs_with(workflow, uploads))
    deploy = next(j for j in workflow["jobs"].values() if _deploys(j))
    assert build_job in _as_list(deploy.get("needs")), "deploy must wait for the build"
    assert deploy["environment"]["name"] == "github-pages"


def _jobs_with(workflow, steps) -> list[dict]:
    return [j for j in workflow["jobs"].values() if any(s in j.get("steps", []) for s in steps)]


def _deploys(job) -> bool:
    return any(s.get("uses", "").startswith("actions/deploy-pages@") for s in job["steps"])


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_the_book_is_built_where_the_readme_says(workflow):
    readme = (ROOT / "README.md").read_text()
    assert "_build/html/index.html" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert "jupyter-book build ." in makefile, "make book must build into ./_build/html"


TESTS_WORKFLOW = ROOT / ".github" / "workflows" / "tests.yml"


@pytest.fixture(scope="module")
def tests_workflow() -> dict:
    assert TESTS_WORKFLOW.is_file(), TESTS_WORKFLOW
    return yaml.safe_load(TESTS_WORKFLOW.read_text())


def test_contributors_pull_requests_run_the_test_suite(tests_workflow):
    triggers = tests_workflow[True]  # PyYAML reads the key `on` as the boolean True
    assert "pull_request" in triggers


def test_pull_requests_are_tested_exactly_as_ci_tests_main(tests_workflow):
    """The workflow runs `.ci/run`, which installs the same apt packages as CI and runs
    the README's test command (tests/test_environment.py checks that line of .ci/run)."""
    runs = [s["run"].strip() for s in _steps(tests_workflow) if "run" in s]
    assert runs == [".ci/run"], runs
    ci = (ROOT / ".ci" / "run").read_text()
    for package in ("chromium", "chromium-driver", "bubblewrap"):
        assert package in ci
    (job,) = tests_workflow["jobs"].values()
    container = job["container"]
    # Debian (apt has chromium and chromium-driver), CPython 3.11 like the Makefile's
    image = container["image"]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-(bookworm|trixie)", image), image
    assert "python3.11" in (ROOT / "Makefile").read_text()
    # bubblewrap needs to create namespaces inside the container
    assert "--privileged" in container.get("options", "")


def test_pull_requests_get_cpu_wheels_of_torch_like_the_book(workflow, tests_workflow):
    def extra_index(wf):
        return {s.get("env", {}).get("PIP_EXTRA_INDEX_URL") for s in _steps(wf)} - {None}

    assert extra_index(tests_workflow) == extra_index(workflow) == {
        "https://download.pytorch.org/whl/cpu"
    }
