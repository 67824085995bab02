"""The instructor's workflow on top of nbgrader's own Python API.

One module per idea:

- `course`: the course directory, read from its ``nbgrader_config.py``;
- `limits`: per-submission resource limits and killing a submission's whole process tree;
- `sandbox`: the bubblewrap sandbox each submission's kernel runs in;
- `worker`: what runs in the process that grades one submission;
- `runner`: many submissions in parallel, each in its own private course directory;
- `cluster`: the same jobs graded on a Dask cluster (``course autograde --cluster``);
- `scan`: answer cells read outside the kernel, flagging tampering with the grading;
- `record`: merging one submission's results into the course gradebook, from trusted data;
- `nbgrader_fixes`: a workaround for an nbgrader bug (duplicated cells);
- `autograde`: the ``course autograde`` command (discovery, pre-checks, summary);
- `leaks`: which lines of the source notebooks must never reach students;
- `release`: regenerating ``exercises/`` and checking that it is fresh;
- `check`: the whole-course check;
- `feedback`: feedback HTML without the hidden tests' source;
- `export`: grades to CSV, per assignment and per question;
- `report`: the class report (difficulty, discrimination, misconceptions);
- `reference_guard`: detecting a submission that uses the course's reference code;
- `mutation`: mutation testing of the checkers against the reference solutions (mutmut);
- `cli`: the ``course`` command line.

Importing this package is cheap: nbgrader is imported only by the modules that use it,
so a checker can import `reference_guard` inside a graded kernel.
"""
