"""What the dev kit adds to a development install, found by entry point, never imported.

The image ships without the dev kit; a development install (`make install`)
registers its pieces under the entry-point group `worthy_batch.devkit`
(pyproject.toml). The shipped code asks for them by name:

    local_database    () -> DSN of the embedded PostgreSQL (when DATABASE_URL is unset)
    local_submitter   the `--submitter local` class (children on the Batch emulator)
    local_run         the handler of `worthy-batch local-run` (entry/commands.py)
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from common.domain.errors import ConfigError

GROUP = "worthy_batch.devkit"


def devkit(name: str, needed_for: str) -> Any:
    """The dev kit's `name`, or a ConfigError saying that this install has no dev kit."""
    for point in entry_points(group=GROUP, name=name):
        try:
            return point.load()
        except ImportError:
            break  # declared by the project's metadata, but the package is not installed
    raise ConfigError(
        {
            needed_for: "needs the dev kit, which this install does not have (the image ships "
            "without it; a development install has it: make install)"
        }
    )
