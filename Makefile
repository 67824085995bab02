# The two set-up commands of the README:
#   make book   install everything pinned into .venv, then build the book
#   make test   install (if needed), then run the whole test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# nbgrader and jupyter-book call other scripts of the environment (alembic, the kernel)
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Training loops show progress bars in a reader's notebook, not in the built book or tests
# (course_lib/progress.py).
export COURSE_PROGRESS := 0
STAMP := $(VENV)/.installed

.PHONY: book test lint release clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Chapters are re-executed only when their code changes (jupyter-cache), but the cache
# does not know about course_lib: drop it whenever the library changes.
LIB_SOURCES := $(shell find course_lib -name '*.py')
_build/.course_lib-stamp: $(LIB_SOURCES)
	rm -rf _build/.jupyter_cache
	mkdir -p _build
	touch $@

book: $(STAMP) _build/.course_lib-stamp
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

release: $(STAMP)
	mkdir -p _build
	for a in $$(ls solutions); do \
		nbgrader generate_assignment $$a --force --CourseDirectory.db_url=sqlite:///$(CURDIR)/_build/gradebook.db || exit 1; \
	done

clean:
	rm -rf _build
