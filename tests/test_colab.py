"""The Colab route: every exercise starts with a cell that, on Colab only, installs the course
and its exact pins from a release tag. The cell itself is run here, in a fresh venv, with
"Colab" faked and the release's two files (the package and constraints.txt) served from this
repository: a wheel built from it and its constraints.txt. Afterwards every exercise's
imports run in that venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml
from conftest import ROOT, copy_course

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted(ROOT.glob("exercises/*/*.ipynb")) + sorted(ROOT.glob("solutions/*/*.ipynb"))
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
COURSE = "https://github.com/brain-like-constraints/course"


def cells(notebook):
    return json.loads(notebook.read_text())["cells"]


def source(cell) -> str:
    return "".join(cell["source"])


def colab_cell(notebook) -> dict:
    (cell,) = [c for c in cells(notebook) if c["metadata"].get("nbgrader", {}).get("grade_id")
               == "colab_setup"]
    return cell


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_the_colab_cell_comes_first_is_locked_and_installs_this_release(notebook):
    code = [c for c in cells(notebook) if c["cell_type"] == "code"]
    cell = colab_cell(notebook)
    assert source(code[0]) == source(cell), "the Colab cell must be the first code cell"
    assert cell["metadata"]["nbgrader"]["locked"] and not cell["metadata"]["nbgrader"]["grade"]
    text = source(cell)
    assert 'if "google.colab" in sys.modules:' in text  # runs on Colab only
    assert f'RELEASE = "v{VERSION}"' in text, f"the cell must install v{VERSION} (pyproject)"
    assert "main" not in text and "master" not in text
    assert f'COURSE = "{COURSE}"' in text


def test_the_cell_installs_from_the_books_repository():
    assert yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"] == COURSE


def test_every_exercise_carries_the_same_cell():
    assert len({source(colab_cell(nb)) for nb in NOTEBOOKS}) == 1


def test_elsewhere_the_cell_does_nothing():
    """Outside Colab (a student's machine, the grader): no install, no output."""
    result = subprocess.run(
        [sys.executable, "-c", source(colab_cell(NOTEBOOKS[0]))],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PATH="/nonexistent"),  # pip could not even be found
    )
    assert result.returncode == 0 and result.stdout == result.stderr == "", result


# Runs the cell as Colab would, with the two release URLs served from here.
HARNESS = """
import subprocess, sys, types
sys.modules["google.colab"] = types.ModuleType("google.colab")
served = {served!r}
real_run = subprocess.run
asked = []
def run(command, **kwargs):
    asked.extend(command)
    return real_run([served.get(part, part) for part in command], **kwargs)
subprocess.run = run
exec({cell!r})
missing = set(served) - set(asked)
assert not missing, f"the cell did not ask for {{missing}}"
"""


def test_the_cell_installs_a_working_course_in_a_fresh_python(tmp_path):
    repo = copy_course(tmp_path / "repo")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(repo)],
        check=True, timeout=600,
    )
    (wheel,) = wheels.glob("course_lib-*.whl")
    python = shutil.which("python3.11")
    assert python
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    release = f"{COURSE}/raw/v{VERSION}"
    served = {
        f"{release}/constraints.txt": str(repo / "constraints.txt"),
        f"course-lib @ git+{COURSE}@v{VERSION}": f"course-lib @ {wheel.as_uri()}",
    }
    harness = HARNESS.format(served=served, cell=source(colab_cell(NOTEBOOKS[0])))
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-c", harness],
        capture_output=True, text=True, timeout=1800, cwd=tmp_path,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    # The course works there: every exercise's imports, then a checker on a reference.
    for notebook in sorted(ROOT.glob("exercises/*/*.ipynb")):
        imports = next(source(c) for c in cells(notebook) if c["metadata"].get(
            "nbgrader", {}).get("grade_id") == "imports")
        ran = subprocess.run(
            [str(venv / "bin" / "python"), "-c", imports], capture_output=True, text=True,
            timeout=300, cwd=tmp_path,
        )
        assert ran.returncode == 0, f"{notebook.name}: {ran.stderr[-2000:]}"
    versions = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import torch, neurogym, nbgrader; print(torch.__version__, neurogym.__version__)"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout.split()
    pins = dict(re.findall(r"^([\w-]+)==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M))
    assert versions[0].split("+")[0] == pins["torch"] and versions[1] == pins["neurogym"]
