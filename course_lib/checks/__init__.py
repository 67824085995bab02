"""Checkers for the autograded test cells, one module per assignment.

A checker runs a student's function or class on seeded cases, compares it with the
reference, and raises `AssertionError` with a message in the student's terms. The test
cells only call checkers, so the test logic itself is tested in `tests/`.
"""
