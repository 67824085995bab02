"""What a reader on their own finds in every chapter: prerequisites and time before starting,
learning objectives in one style, and "Think!" questions whose answers open on a click."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT, toc_pages

CHAPTERS = [page for page in toc_pages() if re.match(r"book/\d\d_", page)]


def source(page: str) -> str:
    return (ROOT / f"{page}.md").read_text()


def admonitions(text: str, title: str) -> list[str]:
    """The bodies of the colon-fenced admonitions with this title."""
    return re.findall(rf"^:::\{{admonition\}} {re.escape(title)}\n(.*?)^:::$", text, re.M | re.S)


@pytest.mark.parametrize("page", CHAPTERS)
def test_learning_objectives_come_first_in_one_style(page):
    (body,) = admonitions(source(page), "Learning objectives")
    assert body.startswith(":class: tip\n"), f"{page}: objectives must be `:class: tip`"


@pytest.mark.parametrize("page", CHAPTERS)
def test_before_you_start_gives_prerequisites_and_time(page):
    text = source(page)
    (body,) = admonitions(text, "Before you start")
    assert "Prerequisites" in body and "Time" in body, body
    assert re.search(r"\d+ min", body), f"{page}: give the reading time in minutes"
    # right after the objectives
    assert text.index("{admonition} Before you start") > text.index("{admonition} Learning obj")


@pytest.mark.parametrize("page", CHAPTERS)
def test_two_to_four_think_questions_with_hidden_answers(page):
    questions = admonitions(source(page), "Think!")
    assert 2 <= len(questions) <= 4, f"{page}: {len(questions)} Think! questions"
    for body in questions:
        answer = re.search(r"```\{admonition\} Answer\n:class: dropdown\n\n(.+?)```", body, re.S)
        assert answer and len(answer.group(1).split()) >= 15, body


@pytest.mark.slow
def test_answers_are_collapsed_on_the_built_page(html):
    for page in CHAPTERS:
        text = (html / f"{page}.html").read_text()
        think = text.count('<p class="admonition-title">Think!</p>')
        # sphinx-togglebutton collapses every `.admonition.dropdown` when the page loads
        hidden = sum({"admonition", "dropdown"} <= set(classes.split())
                     for classes in re.findall(r'<div class="([^"]*)"', text))
        assert think >= 2 and hidden >= think, (page, think, hidden)


# --- The science on the page, the bookkeeping off it (issue 15 §5) -----------------------

HIDING_TAGS = ("remove-input", "remove-cell", "hide-input", "hide-cell")


def visible_code_cells(text: str) -> list[str]:
    """The code of every code cell whose input the rendered page shows."""
    cells = re.findall(r"^```\{code-cell\} ipython3\n(.*?)^```$", text, re.M | re.S)
    shown = []
    for cell in cells:
        header = re.match(r"(---\n.*?\n---\n|(?::\w+:.*\n)*)", cell, re.S).group(0)
        if not any(tag in header for tag in HIDING_TAGS):
            shown.append(cell[len(header):])
    return shown


def test_visible_code_cells_finds_shown_and_skips_hidden():
    text = ("```{code-cell} ipython3\nshown = 1\n```\n\n"
            "```{code-cell} ipython3\n:tags: [remove-cell]\nhidden = 1\n```\n\n"
            "```{code-cell} ipython3\n---\ntags: [hide-input]\n---\nfolded = 1\n```\n")
    assert visible_code_cells(text) == ["shown = 1\n"]


@pytest.mark.parametrize("page", CHAPTERS)
def test_glue_and_thread_settings_stay_off_the_page(page):
    shown = "\n".join(visible_code_cells(source(page)))
    assert visible_code_cells(source(page)), page
    assert not re.search(r"^\s*glue\(", shown, re.M), f"{page}: a glue call is shown"
    assert "set_num_threads" not in shown, f"{page}: a thread setting is shown"


def included_objects(text: str) -> list[tuple[str, str]]:
    """(file, object) of every `literalinclude` with `:pyobject:` in a page."""
    return re.findall(r"```\{literalinclude\} \.\./(\S+)\n:pyobject: (\S+)", text)


@pytest.mark.parametrize("page", [p for p in CHAPTERS if included_objects(source(p))])
def test_included_library_code_exists_and_is_not_an_exercise(page):
    """What a page shows of the library is the tested code itself (`literalinclude`), never
    a function students write in an assignment (solutions stay off the book)."""
    import ast
    import json

    exercises = set()
    for notebook in ROOT.glob("solutions/*/*.ipynb"):
        for cell in json.loads(notebook.read_text())["cells"]:
            code = "".join(cell["source"])
            if "### BEGIN SOLUTION" in code:
                exercises |= set(re.findall(r"^\s*(?:def|class) (\w+)", code, re.M))
    for path, qualified in included_objects(source(page)):
        tree = ast.parse((ROOT / path).read_text())
        scope = tree.body
        for part in qualified.split("."):
            found = [n for n in scope if getattr(n, "name", None) == part]
            assert found, f"{page}: {path} has no {qualified}"
            scope = found[0].body
        assert qualified.split(".")[-1] not in exercises, f"{page}: {qualified} is an exercise"


def test_most_chapters_show_library_code():
    showing = [page for page in CHAPTERS if included_objects(source(page))]
    assert len(showing) >= 5, showing


def glued_names(text: str) -> tuple[set[str], list[re.Pattern]]:
    """Names a page's code cells glue: literal ones, and f-string ones as patterns."""
    literal = set(re.findall(r"""\bglue\(\s*["'](\w+)["']""", text))
    patterns = [re.compile(r"\w+".join(map(re.escape, re.split(r"\{[^}]*\}", name))) + "$")
                for _, name in re.findall(r"""\bglue\(\s*f(["'])(.*?)\1""", text)]
    return literal, patterns


@pytest.mark.parametrize("page", CHAPTERS)
def test_every_glued_name_the_text_uses_is_glued(page):
    """The text's numbers come from the page's own run: every name a `{glue}` role pastes
    is glued by a cell of the page (pastes from another page, ``doc.md::key``, are checked
    by that chapter's tests)."""
    text = source(page)
    literal, patterns = glued_names(text)
    used = set(re.findall(r"\{glue(?::\w+)?\}`(\w+)(?=[`:])", text))
    missing = sorted(name for name in used
                     if name not in literal and not any(p.match(name) for p in patterns))
    assert not missing, f"{page}: used in the text but never glued: {missing}"


def test_most_chapters_glue_their_numbers():
    gluing = [page for page in CHAPTERS if glued_names(source(page))[0]]
    assert len(gluing) >= 10, gluing


@pytest.mark.parametrize("page", CHAPTERS)
def test_every_citation_is_in_the_bibliography(page):
    keys = set(re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "references.bib").read_text(), re.M))
    cited = {key.strip() for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", source(page))
             for key in group.split(",")}
    assert cited <= keys, f"{page}: cited but not in references.bib: {sorted(cited - keys)}"


@pytest.mark.parametrize("page", CHAPTERS)
def test_every_diagram_exists_and_is_described(page):
    """A diagram (an SVG figure) is a file of the book, with an alt text a screen reader
    can use instead of the picture: a description, not a label."""
    for path, options in re.findall(r"```\{figure\} (\S+\.svg)\n(.*?)```", source(page), re.S):
        assert (ROOT / "book" / path).is_file(), f"{page}: {path}"
        alt = re.search(r"^:alt: (.+)$", options, re.M)
        assert alt and len(alt.group(1).split()) >= 30, f"{page}: {path} has no real alt text"


def code_cells(text: str) -> list[str]:
    """Every code cell of a page, hidden or shown (with its option lines)."""
    return re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", text, re.S)


def cited_keys(text: str) -> set[str]:
    return {key.strip() for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text)
            for key in group.split(",")}


def shown_objects(text: str) -> set[str]:
    """The library objects a page includes with `literalinclude` (``Class.method`` too)."""
    return {name for _, name in included_objects(text)}
