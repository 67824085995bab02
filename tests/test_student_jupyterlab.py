"""The student's side: JupyterLab 4 with nbgrader's extensions opens a released exercise,
and nbgrader's Validate button reports the untouched exercise as failing and a completed
one as passing.

Everything goes through the browser: headless Chromium opens the notebooks in a real
`jupyter lab` server (the venv's, on a free port with a token, rooted in a temporary copy
of the course), and the Validate button in the notebook toolbar runs nbgrader's
validate_assignment server extension; the test reads the dialog it shows. The completed
notebook is the released exercise with its answer cells filled from the solution (the
`### BEGIN/END SOLUTION` lines removed; `grading_corpus.filled`), which is what a student
hands in.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path

import nbformat
import pytest
from conftest import ARTIFACTS, BIN, REPORT, ROOT, copy_course
from grading_corpus import filled
from headless_chromium import chromium, free_port, severe_console_entries

pytestmark = pytest.mark.slow

ASSIGNMENT = "01_sparse_connectivity"
EXERCISE = f"exercises/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
COMPLETED = f"completed/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
VALIDATE_TIMEOUT = 300  # seconds: nbgrader runs the whole notebook


read_notebook = partial(nbformat.read, as_version=4)


def completed_exercise() -> nbformat.NotebookNode:
    """The released exercise with its answer cells filled from the solution."""
    solution = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    return filled(read_notebook(ROOT / EXERCISE), read_notebook(solution))


def _get(url: str, timeout: float = 5) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status


@pytest.fixture(scope="module")
def lab(tmp_path_factory, tool_env):
    """A JupyterLab server on the temporary course; shut down through its REST API."""
    tmp = tmp_path_factory.mktemp("jupyterlab")
    course = copy_course(tmp / "course")
    completed = course / COMPLETED
    completed.parent.mkdir(parents=True)
    nbformat.write(completed_exercise(), completed)

    port, token = free_port(), secrets.token_hex(16)
    home = tmp / "home"
    env = dict(
        tool_env,
        HOME=str(home),  # no settings, workspaces or config of the machine's user
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"),
        IPYTHONDIR=str(home / ".ipython"),
    )
    log = (tmp / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [
            str(BIN / "jupyter"),
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={course}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
        ],
        cwd=course,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    try:
        while True:
            exited = server.poll() is not None
            assert not exited, "jupyter lab exited:\n" + (tmp / "jupyterlab.log").read_text()
            try:
                if _get(f"{base}/api/status?token={token}") == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.perf_counter() - start < 120, "jupyter lab did not answer within 120 s"
            time.sleep(0.5)
        yield {"base": base, "token": token, "course": course, "log": tmp / "jupyterlab.log"}
    finally:
        request = urllib.request.Request(
            f"{base}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"}
        )
        try:
            urllib.request.urlopen(request, timeout=10)
            server.wait(timeout=60)
        except Exception as error:
            server.kill()
            server.wait(timeout=30)
            raise AssertionError(f"jupyter lab did not stop on /api/shutdown: {error}") from error
        finally:
            log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("lab-chromium") / "profile", 1400, 1000) as driver:
        yield driver


def open_notebook(browser, lab, path: str) -> dict:
    """Open a notebook in JupyterLab and wait until all its cells are rendered."""
    expected = len(json.loads((lab["course"] / path).read_text())["cells"])
    # A workspace of its own, so that JupyterLab restores no other notebook beside it.
    workspace = "student-" + secrets.token_hex(4)
    browser.get(f"{lab['base']}/lab/workspaces/{workspace}/tree/{path}?token={lab['token']}")
    return browser.execute_async_script(
        """
        const expected = arguments[0];
        const done = arguments[arguments.length - 1];
        const t0 = Date.now();
        const poll = () => {
          const panel = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)");
          const cells = panel ? panel.querySelectorAll(".jp-Notebook .jp-Cell") : [];
          const editors = panel ? panel.querySelectorAll(".jp-CodeCell .cm-content") : [];
          const button = panel && panel.querySelector(".validate-button");
          const rendered = panel ? panel.querySelectorAll(".jp-MarkdownOutput h1").length : 0;
          const ready = cells.length >= expected && editors.length && rendered && button;
          if (ready || Date.now() - t0 > 120000) {
            done({
              cells: cells.length,
              text: panel ? panel.querySelector(".jp-Notebook").textContent : "",
              code: [...editors].map((e) => e.textContent).join("\\n"),
              headings: panel ? [...panel.querySelectorAll(".jp-MarkdownOutput h1")]
                .map((h) => h.textContent) : [],
              validate_button: Boolean(button),
            });
          } else setTimeout(poll, 250);
        };
        poll();
        """,
        expected,
    )


def validate_in_browser(browser) -> dict:
    """Press the notebook's Validate button; return the result dialog's class and text."""
    from selenium.webdriver.common.by import By

    selector = ".jp-NotebookPanel:not(.lm-mod-hidden) .validate-button"
    browser.find_element(By.CSS_SELECTOR, selector).click()
    browser.set_script_timeout(VALIDATE_TIMEOUT + 30)
    result = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const limit = arguments[0] * 1000;
        const t0 = Date.now();
        const poll = () => {
          const dialog = document.querySelector(".jp-Dialog");
          const body = dialog && dialog.querySelector(
            ".validation-success, .validation-failed, .validation-changed, "
            + ".validation-type-changed, .jp-Dialog-body");
          const header = dialog && dialog.querySelector(".jp-Dialog-header");
          const finished = body && (body.className.includes("validation-")
                                    || /error|failed/i.test(dialog.textContent));
          if (finished || Date.now() - t0 > limit) {
            done({
              title: header ? header.textContent : "",
              classes: body ? body.className : "no dialog",
              text: dialog ? dialog.textContent : "",
              seconds: (Date.now() - t0) / 1000,
            });
          } else setTimeout(poll, 500);
        };
        poll();
        """,
        VALIDATE_TIMEOUT,
    )
    # Close the dialog so that the next notebook starts clean.
    browser.execute_script(
        "const b = document.querySelector('.jp-Dialog .jp-mod-accept'); if (b) b.click();"
    )
    return result


def test_student_opens_validates_and_passes_in_jupyterlab(lab, browser):
    start = time.perf_counter()
    exercise = json.loads((lab["course"] / EXERCISE).read_text())
    title = "".join(exercise["cells"][0]["source"]).splitlines()[0].lstrip("# ").strip()

    page = open_notebook(browser, lab, EXERCISE)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "jupyterlab_exercise_01.png"))
    assert page["cells"] == len(exercise["cells"]), f"{EXERCISE}: {page['cells']} cells shown"
    assert any(title in heading for heading in page["headings"]), (title, page["headings"])
    assert "YOUR CODE HERE" in page["code"], f"{EXERCISE}: no 'YOUR CODE HERE' cell visible"
    assert "BEGIN SOLUTION" not in page["text"] and "HIDDEN TESTS" not in page["text"]
    assert page["validate_button"], "nbgrader's Validate button is missing from the toolbar"

    untouched = validate_in_browser(browser)
    assert "validation-failed" in untouched["classes"], (
        f"the untouched exercise should fail validation; dialog: {untouched}\n"
        + lab["log"].read_text()[-3000:]
    )
    assert "The following cell failed" in untouched["text"]
    assert "NotImplementedError" in untouched["text"]

    page = open_notebook(browser, lab, COMPLETED)
    assert "YOUR CODE HERE" not in page["code"]
    completed = validate_in_browser(browser)
    assert "validation-success" in completed["classes"], (
        f"the completed exercise should pass validation; dialog: {completed}\n"
        + lab["log"].read_text()[-3000:]
    )
    assert "Success! Your notebook passes all the tests." in completed["text"]

    console = [m for m in severe_console_entries(browser) if "favicon" not in m]
    seconds = time.perf_counter() - start
    line = (
        f"jupyterlab: {EXERCISE} opened; Validate: untouched failed "
        f"({untouched['seconds']:.0f} s), completed passed ({completed['seconds']:.0f} s); "
        f"{seconds:.0f} s in all; console errors: {len(console)}"
    )
    print(line, *console, sep="\n")
    REPORT.append(line)


def test_completed_exercise_keeps_every_locked_cell():
    """The completed notebook differs from the release only in its answer cells."""
    exercise = read_notebook(ROOT / EXERCISE)
    completed = completed_exercise()
    changed = [
        cell["metadata"]["nbgrader"]["grade_id"]
        for before, cell in zip(exercise["cells"], completed["cells"], strict=True)
        if before["source"] != cell["source"]
    ]
    answers = [
        c["metadata"]["nbgrader"]["grade_id"]
        for c in exercise["cells"]
        if c["metadata"].get("nbgrader", {}).get("solution")
    ]
    assert changed == answers
    assert all("BEGIN SOLUTION" not in "".join(c["source"]) for c in completed["cells"])
    assert Path(ROOT / EXERCISE).is_file()
