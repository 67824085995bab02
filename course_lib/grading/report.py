"""``course report``: what the class got wrong, question by question.

Scores say how much a class learnt; the checkers' mistake ids say *what* it got wrong.
Every checker failure ends with ``[mistake: <id>]`` (`course_lib.checks._common.fail`),
and the autograded notebooks keep each test cell's outputs, so the id of every failed
test cell is read back from ``autograded/<student>/<assignment>/*.ipynb`` here, outside
any kernel: nothing extra ever runs in a student's kernel.

For one assignment the report gives, per question (grade cell):

- the **score distribution** and the **difficulty**, mean score / maximum (1: everyone
  got it, 0: nobody did);
- the **discrimination**: the correlation, across students, of the question's score with
  the score on the *rest* of the assignment (item-rest correlation). Near 0 or negative,
  the question does not separate students who know the material from those who do not
  (often a question that tests something else: a typo-prone API, an unclear statement).
  It is undefined (empty in the CSV) when the question's score or the rest is the same
  for everyone;
- the **misconception table**: how many students hit each mistake id, with a message;
- the submissions that could not be graded, were flagged, or are not graded yet;
- a draft "common mistakes" box (MyST) with the most frequent mistakes, for the chapter.

Which scores count: only submissions that were graded (one that could not be graded is
all zeros, which says nothing about the questions; it is listed instead). A score still
waiting for a manual grade (a written answer, or a part the grader's scan zeroed) is left
out of that question's statistics and out of the rest score of the others.

A failed test cell without a mistake id gets a generic one: ``error.<ExceptionName>``
for an exception (a ``NameError`` from an answer cell that never ran, a plain
``assert``, ``KeyboardInterrupt`` at nbgrader's per-cell timeout) and ``error.stderr``
for a cell nbgrader failed because it wrote to stderr.

The report is written with the csv module and matplotlib (figures embedded in the HTML
as PNG). It names students: keep it out of git, like the grades.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course_lib.grading.course import Course, CourseError

# A checker's failure text ends with this (course_lib.checks._common.CheckFailure).
MISTAKE_SUFFIX = re.compile(r"\s*\[mistake: ([^\]\s]+)\]\s*\Z")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SCAN_COMMENT = "Scored zero by the grader's scan"  # written by autograde._zero_flagged_parts
NOT_GRADED = "not graded:"  # first words of the log of a submission that failed to grade
MAX_MESSAGE = 300  # characters of an example message shown in the tables
TOP_MISTAKES = 15  # bars in the figure of the most frequent mistakes

CSV_FILES = ("questions.csv", "score_distribution.csv", "misconceptions.csv",
             "mistakes_per_student.csv", "problems.csv")


# ------------------------------------------------------------------ reading a graded cell


@dataclass(frozen=True)
class Failure:
    """Why a test cell failed: the mistake id and the message the student saw."""

    mistake: str
    message: str


def _plain(text: str) -> str:
    return ANSI_ESCAPE.sub("", text or "").strip()


def failure_of_error(ename: str, evalue: str) -> Failure:
    """The failure an ``error`` output describes: the checker's mistake id, or a generic
    ``error.<ExceptionName>`` for any other exception."""
    evalue = _plain(evalue)
    found = MISTAKE_SUFFIX.search(evalue)
    if found:
        return Failure(found.group(1), evalue[:found.start()].strip())
    name = re.sub(r"\W", "_", _plain(ename)) or "Error"
    return Failure(f"error.{name}", f"{name}: {evalue}" if evalue else name)


def first_failure(cell) -> Failure | None:
    """The failure a graded test cell shows, or None if it passed.

    A cell stops at its first exception, so it has at most one ``error`` output: that is
    the first failure, even when a stderr line came before it (the checker's verdict says
    more than a warning). Without an error, a stderr output is what nbgrader failed it for.
    """
    outputs = cell.get("outputs", [])
    for output in outputs:
        if output.get("output_type") == "error":
            return failure_of_error(output.get("ename", ""), output.get("evalue", ""))
    for output in outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = _plain(output.get("text", ""))
            first_line = text.splitlines()[0] if text else ""
            return Failure("error.stderr", f"the cell wrote to stderr: {first_line}")
    return None


def _is_test_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution")


def failures_in_notebook(path: Path) -> dict[str, Failure]:
    """grade id -> failure, for every failed test cell of an autograded notebook."""
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    found = {}
    for cell in nb.cells:
        if _is_test_cell(cell):
            failure = first_failure(cell)
            grade_id = cell["metadata"]["nbgrader"].get("grade_id")
            if failure is not None and grade_id and grade_id not in found:
                found[grade_id] = failure
    return found


# ------------------------------------------------------------------ the class's results


@dataclass(frozen=True)
class Question:
    notebook: str
    name: str  # the grade cell's id
    kind: str  # "autograded" (a test cell) or "manual" (a written answer)
    max_score: float

    @property
    def key(self) -> tuple[str, str]:
        return self.notebook, self.name


@dataclass
class Submission:
    student: str
    graded: bool  # False: it could not be graded (all zeros, no autograded notebook)
    flagged: bool = False
    scores: dict[tuple[str, str], float | None] = field(default_factory=dict)  # None: pending
    failures: dict[tuple[str, str], Failure] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)  # why it failed or was flagged

    def total(self, skip: tuple[str, str] | None = None) -> float:
        """Sum of the known scores (those not awaiting a manual grade), without ``skip``."""
        return sum(s for k, s in self.scores.items() if s is not None and k != skip)


@dataclass
class ClassResults:
    assignment: str
    questions: list[Question]
    submissions: list[Submission]
    not_graded_yet: list[str]  # students with a submission the gradebook does not know

    @property
    def graded(self) -> list[Submission]:
        return [s for s in self.submissions if s.graded]


def _question_order(course: Course, assignment: str, notebook: str) -> dict[str, int]:
    """grade id -> position in the source notebook (the order students meet them)."""
    path = course.folder("source", ".", assignment) / f"{notebook}.ipynb"
    if not path.is_file():
        return {}
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    ids = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells]
    return {grade_id: i for i, grade_id in enumerate(ids) if grade_id}


def _questions(course: Course, gb_assignment) -> list[Question]:
    questions = []
    for notebook in sorted(gb_assignment.notebooks, key=lambda nb: nb.name):
        order = _question_order(course, gb_assignment.name, notebook.name)
        cells = sorted(notebook.grade_cells, key=lambda c: (order.get(c.name, len(order)), c.name))
        questions += [Question(notebook.name, c.name,
                               "autograded" if c.cell_type == "code" else "manual",
                               float(c.max_score)) for c in cells]
    return questions


def _known_score(grade) -> float | None:
    """The grade's score, or None while it waits for a manual grade."""
    if grade.needs_manual_grade and grade.manual_score is None:
        return None
    return float(grade.score)


def _failed_reason(course: Course, assignment: str, student: str) -> str:
    """Why a submission could not be graded, from its grading log."""
    log = course.folder("autograded", student, assignment)
    log = log.with_name(log.name + ".log")
    where = f"see {log.relative_to(course.root)}" if log.is_relative_to(course.root) else str(log)
    text = log.read_text(errors="replace") if log.is_file() else ""
    for line in text.splitlines():
        if line.startswith(NOT_GRADED):
            return line[len(NOT_GRADED):].strip()
    return f"could not be graded ({where})"


def _flag_reasons(submitted_notebooks, questions: list[Question]) -> list[str]:
    """What the gradebook says about a flagged, graded submission."""
    kinds = {q.key: q.kind for q in questions}
    reasons = []
    for notebook in submitted_notebooks:
        for comment in notebook.comments:
            text = comment.auto_comment or ""
            if text.startswith(SCAN_COMMENT):
                reasons.append(f"{notebook.name}/{comment.name}: {text.split(' (see ')[0]}")
        for grade in notebook.grades:
            if (kinds.get((notebook.name, grade.name)) == "autograded"
                    and grade.needs_manual_grade and grade.manual_score is None):
                reasons.append(f"{notebook.name}/{grade.name}: awaits your review")
    return reasons or ["flagged in the gradebook (see the autograde summary)"]


def collect(course: Course, assignment: str) -> ClassResults:
    """Read the gradebook and the autograded notebooks of ``assignment``."""
    from nbgrader.api import MissingEntry

    from course_lib.grading.record import gradebook

    course.require_assignment(assignment)
    if course.db_path is not None and not course.db_path.exists():
        raise CourseError(f"no gradebook at {course.db_path}: autograde {assignment} first")
    submissions = []
    with gradebook(course) as gb:
        try:
            gb_assignment = gb.find_assignment(assignment)
        except MissingEntry:
            raise CourseError(f"{assignment} is not in the gradebook: autograde it first") from None
        questions = _questions(course, gb_assignment)
        for submitted in sorted(gb_assignment.submissions, key=lambda s: s.student.id):
            submissions.append(_submission(course, assignment, submitted, questions))
    known = {s.student for s in submissions}
    waiting = sorted(set(course.submissions(assignment)) - known)
    return ClassResults(assignment, questions, submissions, waiting)


def _submission(course: Course, assignment: str, submitted, questions) -> Submission:
    student = submitted.student.id
    folder = course.folder("autograded", student, assignment)
    notebooks = {nb.name: nb for nb in submitted.notebooks}
    graded = any((folder / f"{name}.ipynb").is_file() for name in notebooks)
    flagged = any(nb.flagged for nb in notebooks.values())
    result = Submission(student, graded, flagged)
    if not graded:
        result.reasons.append(_failed_reason(course, assignment, student))
        return result
    for name, notebook in notebooks.items():
        for grade in notebook.grades:
            result.scores[(name, grade.name)] = _known_score(grade)
        path = folder / f"{name}.ipynb"
        try:
            failures = failures_in_notebook(path) if path.is_file() else {}
        except Exception as error:  # noqa: BLE001 - one student never stops the report
            result.flagged = True
            result.reasons.append(f"{name}: the autograded notebook could not be read "
                                  f"({type(error).__name__}); its mistakes are not counted")
            failures = {}
        for grade_id, failure in failures.items():
            result.failures[(name, grade_id)] = failure
    result.scores = {q.key: result.scores.get(q.key, 0.0) for q in questions}
    if flagged:
        result.reasons += _flag_reasons(notebooks.values(), questions)
    elif result.reasons:
        result.flagged = True  # a notebook the report could not read
    return result


# ------------------------------------------------------------------ statistics


def correlation(x: list[float], y: list[float]) -> float:
    """Pearson's correlation; NaN when either list is constant or shorter than 2."""
    if len(x) != len(y):
        raise ValueError("correlation of lists of different lengths")
    if len(x) < 2 or max(x) == min(x) or max(y) == min(y):
        return math.nan
    mean_x, mean_y = sum(x) / len(x), sum(y) / len(y)
    dx = [a - mean_x for a in x]
    dy = [b - mean_y for b in y]
    covariance = sum(a * b for a, b in zip(dx, dy, strict=True))
    return covariance / math.sqrt(sum(a * a for a in dx) * sum(b * b for b in dy))


@dataclass
class QuestionStats:
    question: Question
    scores: list[float]  # of the graded students whose score is known
    pending: int  # graded students whose score awaits a manual grade
    mean: float
    difficulty: float  # mean / max: the share of the points the class got
    discrimination: float  # item-rest correlation (NaN when undefined)
    distribution: dict[float, int]  # score -> students
    mistakes: list[tuple[str, int, str]]  # (mistake id, students, example message)


def _example(messages: list[str]) -> str:
    """The most frequent message (the first seen among equals), shortened."""
    message = Counter(messages).most_common(1)[0][0]
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE - 1] + "…"


def question_stats(results: ClassResults) -> list[QuestionStats]:
    stats = []
    graded = results.graded
    for question in results.questions:
        known = [s for s in graded if s.scores.get(question.key) is not None]
        scores = [s.scores[question.key] for s in known]
        rest = [s.total(skip=question.key) for s in known]
        mean = sum(scores) / len(scores) if scores else math.nan
        by_mistake: dict[str, list[str]] = {}
        for submission in graded:
            failure = submission.failures.get(question.key)
            if failure is not None:
                by_mistake.setdefault(failure.mistake, []).append(failure.message)
        mistakes = sorted(((m, len(msgs), _example(msgs)) for m, msgs in by_mistake.items()),
                          key=lambda row: (-row[1], row[0]))
        stats.append(QuestionStats(
            question=question, scores=scores, pending=len(graded) - len(known), mean=mean,
            difficulty=mean / question.max_score if question.max_score and scores else math.nan,
            discrimination=correlation(scores, rest),
            distribution=dict(sorted(Counter(scores).items())), mistakes=mistakes,
        ))
    return stats


# ------------------------------------------------------------------ CSV files


def _number(value: float) -> str:
    """A number for a CSV cell: empty when undefined (NaN)."""
    return "" if math.isnan(value) else f"{value:.4g}"


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def problems(results: ClassResults) -> list[tuple[str, str, str]]:
    """(student, problem, reason) for every submission the instructor must look at."""
    rows = []
    for submission in results.submissions:
        if not submission.graded:
            rows.append((submission.student, "could not be graded", submission.reasons[0]))
        elif submission.flagged:
            rows += [(submission.student, "flagged", r) for r in submission.reasons]
    rows += [(student, "not graded yet", "submitted, but not in the gradebook: autograde it")
             for student in results.not_graded_yet]
    return rows


def write_csvs(results: ClassResults, stats: list[QuestionStats], folder: Path) -> list[Path]:
    paths = [folder / name for name in CSV_FILES]
    _write_csv(paths[0], ["notebook", "question", "kind", "max_score", "students",
                          "awaiting_manual_grade", "mean_score", "difficulty",
                          "discrimination"],
               [[s.question.notebook, s.question.name, s.question.kind,
                 f"{s.question.max_score:g}", len(s.scores), s.pending, _number(s.mean),
                 _number(s.difficulty), _number(s.discrimination)] for s in stats])
    _write_csv(paths[1], ["notebook", "question", "score", "students"],
               [[s.question.notebook, s.question.name, f"{score:g}", count]
                for s in stats for score, count in s.distribution.items()])
    graded = len(results.graded)
    _write_csv(paths[2], ["notebook", "question", "mistake", "students", "share_of_class",
                          "example_message"],
               [[s.question.notebook, s.question.name, mistake, count,
                 _number(count / graded), message]
                for s in stats for mistake, count, message in s.mistakes])
    _write_csv(paths[3], ["student", "notebook", "question", "mistake", "message"],
               [[sub.student, q.notebook, q.name, f.mistake, f.message]
                for sub in results.graded for q in results.questions
                if (f := sub.failures.get(q.key)) is not None])
    _write_csv(paths[4], ["student", "problem", "reason"], [list(r) for r in problems(results)])
    return paths


# ------------------------------------------------------------------ a box for the chapter

NOT_A_MISCONCEPTION = ("common.not_implemented",)  # unfinished work, not a wrong idea
BOX_ITEMS = 5


def common_mistakes_draft(results: ClassResults, stats: list[QuestionStats]) -> str:
    """A draft MyST "common mistakes" box with the class's most frequent mistakes, for
    the instructor to rewrite in general terms and paste into the chapter."""
    graded = len(results.graded)
    found = sorted(((count, s.question.name, mistake, message) for s in stats
                    for mistake, count, message in s.mistakes
                    if mistake not in NOT_A_MISCONCEPTION), key=lambda r: (-r[0], r[1], r[2]))
    lines = [f"<!-- Draft from `course report {results.assignment}`: rewrite each message "
             "in general terms (no numbers from one student's case) before pasting. -->",
             ":::{admonition} Common mistakes", ":class: warning", ""]
    lines += [f"- **{question}** (`{mistake}`, {count} of {graded} students): {message}"
              for count, question, mistake, message in found[:BOX_ITEMS]]
    if not found:
        lines.append("- (no mistake was made by the graded students)")
    return "\n".join([*lines, ":::", ""])


# ------------------------------------------------------------------ figures


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _score_figure(stats: list[QuestionStats]) -> tuple[str, str]:
    """Small multiples: students per score, one panel per question."""
    from matplotlib.figure import Figure

    columns = min(4, len(stats)) or 1
    rows = math.ceil(len(stats) / columns) or 1
    figure = Figure(figsize=(3.2 * columns, 2.4 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, stat in zip(axes, stats, strict=False):
        values = list(stat.distribution)
        ax.bar([f"{v:g}" for v in values], [stat.distribution[v] for v in values],
               color="tab:blue")
        ax.set_title(f"{stat.question.name} (max {stat.question.max_score:g})", fontsize=9)
        ax.set_xlabel("score")
        ax.set_ylabel("students")
        ax.yaxis.get_major_locator().set_params(integer=True)
    for ax in axes[len(stats):]:
        ax.set_visible(False)
    alt = "Bar charts of how many students got each score, one per question: " + "; ".join(
        f"{s.question.name}: " + ", ".join(f"{n} scored {v:g}" for v, n in s.distribution.items())
        for s in stats)
    return _png(figure), alt


def _item_figure(stats: list[QuestionStats]) -> tuple[str, str]:
    """Difficulty against discrimination, one point per question."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5, 4), layout="constrained")
    ax = figure.subplots()
    shown = [s for s in stats if not (math.isnan(s.difficulty) or math.isnan(s.discrimination))]
    ax.scatter([s.difficulty for s in shown], [s.discrimination for s in shown], color="tab:blue")
    at_point: dict[tuple[float, float], list[str]] = {}  # one label per point, names joined
    for s in shown:
        at_point.setdefault((s.difficulty, s.discrimination), []).append(s.question.name)
    for point, labels in at_point.items():
        ax.annotate(", ".join(labels), point, fontsize=8, xytext=(4, 4),
                    textcoords="offset points")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("difficulty (mean score / max; 1 = everyone got it)")
    ax.set_ylabel("discrimination (item-rest correlation)")
    alt = ("Scatter plot of each question's difficulty (x) against its discrimination (y): "
           + "; ".join(f"{s.question.name} at ({s.difficulty:.2f}, {s.discrimination:.2f})"
                       for s in shown)
           + (". Left out (undefined): " + ", ".join(
               s.question.name for s in stats if s not in shown) if len(shown) < len(stats)
              else ""))
    return _png(figure), alt


def _mistake_figure(stats: list[QuestionStats]) -> tuple[str, str] | None:
    """The most frequent mistakes of the class, one bar per (question, mistake)."""
    from matplotlib.figure import Figure

    bars = sorted(((count, f"{s.question.name}: {mistake}") for s in stats
                   for mistake, count, _ in s.mistakes), key=lambda b: (-b[0], b[1]))
    bars = bars[:TOP_MISTAKES]
    if not bars:
        return None
    figure = Figure(figsize=(7, 0.35 * len(bars) + 1), layout="constrained")
    ax = figure.subplots()
    ax.barh([label for _, label in bars][::-1], [count for count, _ in bars][::-1],
            color="tab:red")
    ax.set_xlabel("students")
    ax.xaxis.get_major_locator().set_params(integer=True)
    alt = "Horizontal bars of the most frequent mistakes (students): " + "; ".join(
        f"{label}: {count}" for count, label in bars)
    return _png(figure), alt


# ------------------------------------------------------------------ HTML

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.number { text-align: right; }
code { background: #f6f6f6; padding: 0 0.2em; }
img { max-width: 100%; }
"""


def _cell(value) -> str:
    if isinstance(value, float):
        text = "–" if math.isnan(value) else f"{value:.2f}"
        return f'<td class="number">{text}</td>'
    if isinstance(value, int):
        return f'<td class="number">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>\n" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>\n"


def _figure_html(figure: tuple[str, str] | None) -> str:
    if figure is None:
        return ""
    data, alt = figure
    return f'<p><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"></p>\n'


def render_html(results: ClassResults, stats: list[QuestionStats]) -> str:
    graded = results.graded
    failed = [s for s in results.submissions if not s.graded]
    flagged = [s for s in graded if s.flagged]
    title = f"Class report: {results.assignment}"
    parts = [
        f"<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n",
        f"<h1>{html.escape(title)}</h1>\n",
        f"<p>{len(results.submissions) + len(results.not_graded_yet)} submissions: "
        f"{len(graded)} graded ({len(flagged)} of them flagged), {len(failed)} could not be "
        f"graded, {len(results.not_graded_yet)} not graded yet. The statistics below use the "
        "graded submissions only; a score that awaits a manual grade is left out.</p>\n",
        "<h2>Questions</h2>\n",
        "<p><b>Difficulty</b>: mean score / maximum (1 = everyone got it). "
        "<b>Discrimination</b>: correlation of the question's score with the score on the "
        "rest of the assignment (item-rest); near 0 or below, the question does not "
        "separate students who know the material from those who do not. "
        "– : undefined (the same score for everyone).</p>\n",
        _table(["notebook", "question", "kind", "max", "students", "awaiting manual grade",
                "mean", "difficulty", "discrimination"],
               [[s.question.notebook, s.question.name, s.question.kind,
                 f"{s.question.max_score:g}", len(s.scores), s.pending, s.mean, s.difficulty,
                 s.discrimination] for s in stats]),
    ]
    if graded:
        parts += [_figure_html(_score_figure(stats)), _figure_html(_item_figure(stats))]
    parts.append("<h2>Misconceptions</h2>\n<p>For each question, how many graded students "
                 "hit each mistake (the first failure of the test cell), with the message "
                 "most of them saw. <code>error.*</code>: a failure without a checker's id "
                 "(an exception in the student's code, a timeout, output on stderr).</p>\n")
    parts.append(_figure_html(_mistake_figure(stats)))
    for stat in stats:
        if stat.mistakes:
            parts.append(f"<h3>{html.escape(stat.question.notebook)} / "
                         f"{html.escape(stat.question.name)}</h3>\n")
            parts.append(_table(["mistake", "students", "share", "message"],
                                [[m, n, n / len(graded), msg] for m, n, msg in stat.mistakes]))
    parts.append("<h2>Submissions to look at</h2>\n")
    rows = problems(results)
    parts.append(_table(["student", "problem", "reason"], [list(r) for r in rows])
                 if rows else "<p>None: every submission was graded without a flag.</p>\n")
    parts.append("</body>\n</html>\n")
    return "".join(parts)


# ------------------------------------------------------------------ the command


def report(course: Course, assignment: str, destination: Path | None = None
           ) -> tuple[Path, list[Path], ClassResults, list[QuestionStats]]:
    """Write the HTML report and the CSV files of ``assignment`` into ``destination``
    (default ``reports/<assignment>/`` in the course); return what was written and read."""
    results = collect(course, assignment)
    if not results.submissions:
        raise CourseError(f"no graded submissions of {assignment}: autograde it first")
    stats = question_stats(results)
    folder = destination or course.root / "reports" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    csvs = write_csvs(results, stats, folder)
    box = folder / "common_mistakes.md"
    box.write_text(common_mistakes_draft(results, stats), encoding="utf-8")
    page = folder / "report.html"
    page.write_text(render_html(results, stats), encoding="utf-8")
    return page, [*csvs, box], results, stats
