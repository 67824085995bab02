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
