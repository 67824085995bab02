"""The course directory, as nbgrader sees it through the course's ``nbgrader_config.py``.

Only that file is read (not ``~/.jupyter/nbgrader_config.py``), so that every instructor
and the test suite grade with the same settings. Paths are always built with nbgrader's
own `CourseDirectory.format_path`, so a custom ``directory_structure`` keeps working.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

CONFIG_FILE = "nbgrader_config.py"


class CourseError(Exception):
    """A problem the instructor can fix; the command line prints it as one line."""


def venv_scripts_first() -> None:
    """nbgrader shells out to ``alembic`` and starts kernels by name: put the scripts of
    the running Python environment first on PATH, for this process and its children."""
    scripts = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != scripts:
        os.environ["PATH"] = scripts + os.pathsep + path


def quiet_logger(name: str = "course.nbgrader", level: int = logging.WARNING) -> logging.Logger:
    """The logger given to nbgrader's classes: warnings and errors only, on stderr."""
    log = logging.getLogger(name)
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[nbgrader %(levelname)s] %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(level)
    return log


def load_config(root: Path) -> Config:
    """The course's nbgrader configuration, with its root made absolute."""
    path = root / CONFIG_FILE
    if not path.is_file():
        raise CourseError(
            f"no {CONFIG_FILE} in {root}: run from the course directory or pass --course DIR"
        )
    try:
        config = PyFileConfigLoader(CONFIG_FILE, path=str(root)).load_config()
    except ConfigFileNotFound as error:  # pragma: no cover - checked just above
        raise CourseError(str(error)) from None
    except Exception as error:  # noqa: BLE001 - a broken config file is the user's to fix
        raise CourseError(f"{path} could not be read: {type(error).__name__}: {error}") from None
    config.CourseDirectory.root = str(root)
    return config


@dataclass
class Course:
    """A course directory: its root, its configuration and the folders nbgrader uses."""

    root: Path
    config: Config

    @classmethod
    def load(cls, root: str | os.PathLike | None = None) -> Course:
        root = Path(root or os.getcwd()).resolve()
        if not root.is_dir():
            raise CourseError(f"course directory {root} does not exist")
        return cls(root=root, config=load_config(root))

    # ------------------------------------------------------------------ nbgrader objects

    def coursedir(self, config: Config | None = None, **overrides):
        from nbgrader.coursedir import CourseDirectory

        coursedir = CourseDirectory(config=config or self.config)
        for name, value in overrides.items():
            setattr(coursedir, name, value)
        return coursedir

    def run_nbgrader(
        self,
        converter: str,
        assignment: str,
        student: str | None = None,
        config: Config | None = None,
        log: logging.Logger | None = None,
        **attributes,
    ) -> dict:
        """Run one of nbgrader's converters (``GenerateAssignment``, ``Autograde``,
        ``GenerateFeedback``) the way ``NbGraderAPI`` does, without the exchange that
        ``NbGraderAPI`` sets up (and complains about when it is not writable).

        Returns nbgrader's ``{"success": bool, "error": str, "log": str}``.
        """
        from nbgrader import converters
        from nbgrader.utils import capture_log

        config = config or self.config
        ids = {"assignment_id": assignment}
        if student is not None:
            ids["student_id"] = student
        coursedir = self.coursedir(config=config, **ids)
        app = getattr(converters, converter)(
            coursedir=coursedir, config=config, log=log or quiet_logger()
        )
        for name, value in attributes.items():
            setattr(app, name, value)
        return capture_log(app)

    @property
    def db_url(self) -> str:
        return self.coursedir().db_url

    @property
    def db_path(self) -> Path | None:
        """The gradebook file, when the gradebook is SQLite (nbgrader's default)."""
        url = self.db_url
        return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None

    # ------------------------------------------------------------------ folders

    def folder(self, step: str, student: str = ".", assignment: str = ".") -> Path:
        """``<root>/<step>/<student>/<assignment>`` (nbgrader's directory_structure)."""
        coursedir = self.coursedir()
        name = getattr(coursedir, f"{step}_directory")
        return Path(os.path.normpath(coursedir.format_path(name, student, assignment)))

    def assignments(self) -> list[str]:
        """Every assignment of the course: the folders of the source directory."""
        source = self.folder("source")
        if not source.is_dir():
            raise CourseError(f"no source directory {source} (CourseDirectory.source_directory)")
        return sorted(p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))

    def require_assignment(self, assignment: str) -> str:
        known = self.assignments()
        if assignment not in known:
            raise CourseError(
                f"unknown assignment {assignment!r}; the course has: {', '.join(known) or 'none'}"
            )
        return assignment

    def source_notebooks(self, assignment: str) -> list[str]:
        """Names (without .ipynb) of the assignment's source notebooks."""
        folder = self.folder("source", ".", assignment)
        return sorted(p.stem for p in folder.glob("*.ipynb"))

    def submissions(self, assignment: str) -> dict[str, Path]:
        """student id -> submitted folder of that assignment, for every student."""
        submitted = self.folder("submitted")
        found = {}
        if submitted.is_dir():
            for student in sorted(submitted.iterdir()):
                folder = self.folder("submitted", student.name, assignment)
                if student.is_dir() and not student.name.startswith(".") and folder.is_dir():
                    found[student.name] = folder
        return found
