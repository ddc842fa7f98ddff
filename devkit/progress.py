"""The dev kit's progress bar is the shipped one (common/progress.py): `local-run` draws its
jobs with it, and an executor child its pricing and writing."""

from common.progress import Progress

__all__ = ["Progress"]
