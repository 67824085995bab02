"""nbgrader configuration of the course. The repository root is the course directory."""

c = get_config()  # noqa: F821 - provided by nbgrader

c.CourseDirectory.root = "."
c.CourseDirectory.course_id = "brain-like-constraints"
# Source notebooks (solutions and hidden tests) and the generated student release.
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"

# Checkpoints and caches never enter the release or the grading.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__"]

# Every graded cell is sized to run well inside nbgrader's default 30 s per cell.
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True

# A student who deletes a graded cell by accident gets it back when autograded.
c.OverwriteCells.add_missing_cells = True
c.Autograde.create_student = True

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# nbgrader gives zero to a test cell that writes to stderr. course_lib itself is silent;
# this only drops third-party noise we know to be harmless if a student's own code
# triggers it (gymnasium's environment-checker warnings, neurogym's loguru lines).
c.IgnorePattern.pattern = r"(gymnasium.*UserWarning: .*WARN:|^Neurogym \| )"
