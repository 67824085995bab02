"""Training loops show a progress bar and a closing sentence in a notebook, never on
stderr, and stay silent in scripts, tests, the book build and grading."""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient

from course_lib import progress
from course_lib.models import RateRNN
from course_lib.tasks import TaskDataset
from course_lib.training import train


def _tiny_training(**kwargs):
    data = TaskDataset("PerceptualDecisionMaking-v0", batch_size=4, seq_len=100, seed=0)
    model = RateRNN(data.n_input, 8, data.n_output, seed=0)
    return train(model, data, n_steps=3, eval_every=1, **kwargs)


def test_silent_outside_a_notebook(capfd, monkeypatch):
    monkeypatch.delenv(progress.ENV_SWITCH, raising=False)
    _tiny_training()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_the_switch_and_the_notebook_decide(monkeypatch):
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.delenv(progress.ENV_SWITCH, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert progress.wanted(None)
    monkeypatch.setenv(progress.ENV_SWITCH, "0")
    assert not progress.wanted(None)
    assert progress.wanted(True)  # an explicit request wins
    monkeypatch.delenv(progress.ENV_SWITCH)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # nbgrader grading this kernel
    assert not progress.wanted(None)
    monkeypatch.delenv("NBGRADER_EXECUTION")
    monkeypatch.setattr(progress, "in_notebook", lambda: False)
    assert not progress.wanted(None)


def test_the_closing_sentence_states_the_last_accuracy(capsys):
    history = _tiny_training(progress=True)
    sentence = capsys.readouterr().out.strip()
    percent = int(re.search(r"correctly on (\d+)% of the trials", sentence).group(1))
    assert percent == round(100 * history.accuracy[-1])


@pytest.mark.slow
def test_in_a_jupyter_kernel_the_bar_is_a_widget_not_stderr(tool_env, monkeypatch):
    """Run the loop in a real kernel, as a reader would: the bar is display output."""
    # The kernel inherits this environment: the venv first, no switch, not under nbgrader.
    monkeypatch.setenv("PATH", tool_env["PATH"])
    monkeypatch.delenv(progress.ENV_SWITCH, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from course_lib.models import RateRNN\n"
            "from course_lib.tasks import TaskDataset\n"
            "from course_lib.training import train\n"
            "data = TaskDataset('PerceptualDecisionMaking-v0', batch_size=4, seq_len=100)\n"
            "model = RateRNN(data.n_input, 8, data.n_output)\n"
            "history = train(model, data, n_steps=3, eval_every=1)"
        )
    ]
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={
        "metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if o.get("name") == "stderr"], outputs
    widget = "application/vnd.jupyter.widget-view+json"
    widgets = [o for o in outputs if widget in o.get("data", {})]
    assert widgets, f"no progress bar widget in {outputs}"
    text = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    assert "chooses correctly on" in text
