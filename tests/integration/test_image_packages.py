"""What the image installs: the project built from exactly what the Dockerfile copies.

No Docker engine runs here, so the build stage's project step is replayed: the
files the build stage COPYs from the context (after .dockerignore) go into a
directory, and the wheel is built from it as `pip install --no-deps
--no-build-isolation --no-index .` builds it. Its package list is the image's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from fnmatch import fnmatch
from pathlib import Path

from tests.cfn import ROOT
from tests.unit.test_dockerfile import DOCKERFILE, DOCKERIGNORE, parse, stages

SHIPPED = {"common", "entry", "planner", "executor", "finalizer", "ops"}


def _context_copies(tmp: Path) -> Path:
    """The build stage's /src: every COPY from the context, filtered by .dockerignore."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    ignored = [p for p in patterns[1:] if not p.startswith("!")]
    build = stages(parse(DOCKERFILE.read_text("utf-8")))[0]
    src = tmp / "src"
    src.mkdir()
    for instruction in build.instructions:
        if instruction.keyword != "COPY" or instruction.args.startswith("--from="):
            continue
        *sources, target = instruction.args.split()
        for source in sources:
            path = ROOT / source
            destination = src / (source if target in ("./", ".") else target.removeprefix("./"))
            if path.is_dir():
                shutil.copytree(
                    path,
                    destination,
                    ignore=lambda d, names: [
                        n for n in names if any(fnmatch(n, p.split("/")[-1]) for p in ignored)
                    ],
                )
            else:
                shutil.copy2(path, destination if target not in ("./", ".") else src / path.name)
    return src


def test_the_image_installs_the_stages_and_common_without_the_dev_kit(tmp_path: Path) -> None:
    src = _context_copies(tmp_path)
    assert not (src / "devkit").exists(), "the dev kit is in the build context"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "-w", str(tmp_path / "wheel"), str(src)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("worthy_batch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {n.split("/")[0] for n in names if n.endswith(".py")}
    assert packages == SHIPPED
    assert not any(n.startswith("devkit/") for n in names)
    # What the shipped code needs is all there: the store (a regular package), the
    # migrations' SQL, every stage's entrypoint.
    assert (
        "common/adapters/store/__init__.py" in names and "common/adapters/store/ledger.py" in names
    )
    assert any(
        n.startswith("common/adapters/store/migrations/") and n.endswith(".sql") for n in names
    )
    for stage in ("planner", "executor", "finalizer"):
        assert f"{stage}/entrypoint.py" in names
