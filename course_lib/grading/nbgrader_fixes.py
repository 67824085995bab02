"""Workarounds for nbgrader 0.9.6 bugs that a real class runs into.

**Duplicated cells** (jupyter/nbgrader#1083, open; PR #1753 proposes a fuller fix). A
student who copies a test or answer cell in Jupyter copies its nbgrader metadata too.
nbgrader's ``DeduplicateIds`` keeps the metadata of the last copy and sets the others'
to ``{}``; with ``OverwriteCells.add_missing_cells = True`` (this course's setting)
``OverwriteCells.add_missing_task_cells`` then reads ``metadata["nbgrader"]["grade_id"]``
of every cell that *has* an ``nbgrader`` key, and the whole submission fails with
``KeyError: 'grade_id'``: zero for a student who did everything right.

`DeduplicateIds` below removes the emptied key instead, so the earlier copies become
plain cells (as nbgrader intends) and grading goes on. The parallel grader uses it in
place of nbgrader's; adding it to ``nbgrader_config.py`` makes plain ``nbgrader
autograde`` behave the same::

    from course_lib.grading.nbgrader_fixes import sanitize_preprocessors
    c.Autograde.sanitize_preprocessors = sanitize_preprocessors()
"""

from __future__ import annotations

from nbgrader.preprocessors import DeduplicateIds as _NbgraderDeduplicateIds


class DeduplicateIds(_NbgraderDeduplicateIds):
    """nbgrader's DeduplicateIds, leaving no empty ``nbgrader`` metadata behind."""

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.metadata.get("nbgrader", None) == {}:
            del cell.metadata["nbgrader"]
        return cell, resources


def fixed(preprocessors: list) -> list:
    """A preprocessor list with nbgrader's DeduplicateIds replaced by the fixed one."""
    names = [p if isinstance(p, str) else getattr(p, "__name__", type(p).__name__)
             for p in preprocessors]
    return [DeduplicateIds if n.rsplit(".", 1)[-1] == "DeduplicateIds" else p
            for n, p in zip(names, preprocessors, strict=True)]


def sanitize_preprocessors(config=None) -> list:
    """nbgrader's Autograde.sanitize_preprocessors (as configured), fixed."""
    from nbgrader.converters.autograde import Autograde

    return fixed(list(Autograde(config=config).sanitize_preprocessors))
