"""The Binder route, tested without Binder: an environment built from `binder/` alone (a fresh
venv, `pip install -r binder/requirements.txt` from the repository's root, then
`binder/postBuild`, as repo2docker does) runs JupyterLab, which opens a chapter's MyST
Markdown as a notebook, and the chapter's first code cell runs in the course's kernel.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import jupytext
import pytest
from conftest import ARTIFACTS, ROOT, copy_course
from headless_chromium import chromium, free_port

pytestmark = pytest.mark.slow

CHAPTER = "book/02_dales_law.md"


def test_binder_configuration_is_what_repo2docker_reads():
    binder = ROOT / "binder"
    assert (binder / "runtime.txt").read_text().strip() == "python-3.11"
    requirements = (binder / "requirements.txt").read_text().splitlines()
    lines = [ln.strip() for ln in requirements if ln.strip() and not ln.startswith("#")]
    # the course's exact pins, the course itself, and torch's CPU wheels (no CUDA)
    assert lines == [
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        "-c ../constraints.txt",
        "-e .",
    ]
    assert os.access(binder / "postBuild", os.X_OK), "repo2docker runs postBuild only if executable"
    settings = json.loads((binder / "overrides.json").read_text())
    viewers = settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers == {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory):
    """A venv built from binder/ alone, in a copy of the repository."""
    tmp = tmp_path_factory.mktemp("binder")
    repo = copy_course(tmp / "repo")
    # Here pip reaches only the package registries, where torch 2.13.0 is the CPU build
    # already: drop the line naming torch's own index (test_binder_configuration checks it).
    requirements = repo / "binder" / "requirements.txt"
    lines = requirements.read_text().splitlines(keepends=True)
    requirements.write_text("".join(ln for ln in lines if not ln.startswith("--extra-index-url")))
    venv = tmp / "venv"
    python = shutil.which("python3.11")
    assert python, "python3.11 is needed, as for the README's install"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    env = dict(os.environ, PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "-r", "binder/requirements.txt"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    subprocess.run(["binder/postBuild"], cwd=repo, env=env, check=True, timeout=60)
    return {"repo": repo, "venv": venv, "env": env, "tmp": tmp}


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status


@pytest.fixture(scope="module")
def binder_lab(binder_env):
    tmp, repo = binder_env["tmp"], binder_env["repo"]
    port, token = free_port(), secrets.token_hex(16)
    home = tmp / "home"
    env = dict(
        binder_env["env"],
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"),
        IPYTHONDIR=str(home / ".ipython"),
    )
    log_path = tmp / "jupyterlab.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [
            str(binder_env["venv"] / "bin" / "jupyter"), "lab", "--no-browser",
            "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={repo}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    try:
        while True:
            assert server.poll() is None, "jupyter lab exited:\n" + log_path.read_text()
            try:
                if _get(f"{base}/api/status?token={token}") == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.perf_counter() - start < 120, "jupyter lab did not answer in 120 s"
            time.sleep(0.5)
        yield {"base": base, "token": token, "log": log_path}
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_a_chapter_opens_as_a_notebook_and_its_first_code_cell_runs(binder_lab, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    n_code_cells = sum(c.cell_type == "code" for c in jupytext.read(ROOT / CHAPTER).cells)
    with chromium(tmp_path / "profile", 1400, 1000) as browser:
        workspace = "binder-" + secrets.token_hex(4)
        browser.get(
            f"{binder_lab['base']}/lab/workspaces/{workspace}/tree/{CHAPTER}"
            f"?token={binder_lab['token']}"
        )
        browser.set_script_timeout(150)
        shown = browser.execute_async_script(
            """
            const [expected, done] = [arguments[0], arguments[arguments.length - 1]];
            const t0 = Date.now();
            const poll = () => {
              const panel = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)");
              const code = panel ? panel.querySelectorAll(".jp-CodeCell .cm-content") : [];
              const kernel = panel && panel.querySelector(".jp-Toolbar-kernelStatus, "
                + ".jp-Notebook-ExecutionIndicator");
              if ((code.length >= expected && kernel) || Date.now() - t0 > 120000) {
                done({notebook: Boolean(panel), code_cells: code.length,
                      editor: Boolean(document.querySelector(
                        ".jp-FileEditor:not(.lm-mod-hidden)"))});
              } else setTimeout(poll, 250);
            };
            poll();
            """,
            n_code_cells,
        )
        assert shown["notebook"] and not shown["editor"], (
            f"{CHAPTER} did not open as a notebook: {shown}\n"
            + binder_lab["log"].read_text()[-3000:]
        )
        assert shown["code_cells"] == n_code_cells, shown

        first = browser.find_elements(
            By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell"
        )[0]
        first.find_element(By.CSS_SELECTOR, ".cm-content").click()
        first.find_element(By.CSS_SELECTOR, ".cm-content").send_keys(Keys.SHIFT, Keys.ENTER)
        ran = browser.execute_async_script(
            """
            const [cell, done] = [arguments[0], arguments[arguments.length - 1]];
            const t0 = Date.now();
            const poll = () => {
              const prompt = cell.querySelector(".jp-InputPrompt").textContent.trim();
              const error = cell.querySelector(".jp-OutputArea-output[data-mime-type="
                + "'application/vnd.jupyter.stderr'], .jp-RenderedText[data-mime-type="
                + "'application/vnd.jupyter.error']");
              if (/\\[\\d+\\]/.test(prompt) || Date.now() - t0 > 120000) {
                done({prompt: prompt, error: error ? error.textContent : ""});
              } else setTimeout(poll, 250);
            };
            poll();
            """,
            first,
        )
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "binder_chapter_02.png"))
    assert ran["prompt"] == "[1]:", f"the first code cell did not run: {ran}"
    assert not ran["error"], ran["error"]
