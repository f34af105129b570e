"""``python -m deployc``."""

from deployc.cli import run

run()
