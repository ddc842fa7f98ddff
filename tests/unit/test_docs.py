"""The docs cannot rot: every path they name exists, every section cited exists.

README.md is the map and docs/ holds the rest. Code, the template, the SQL and the
docs cite sections by name (`docs/deploy.md "Draining a dead-letter queue"`) and the
contract by number (`docs/design.md section 6`); these tests read them all and check
that each names a file and a heading that are there, and that every repository path
written in backticks in README.md, docs/*.md, RELIABILITY.md or BENCHMARKS.md exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SELF = Path(__file__).resolve()
TOP_DOCS = [ROOT / "RELIABILITY.md", ROOT / "BENCHMARKS.md"]
# Where citations live: the shipped code, the dev kit, tests, infra, the image, CI.
REPO_DIRS = ["common", "entry", "planner", "executor", "finalizer", "ops", "devkit"]
REPO_DIRS += ["tests", "infra", "docker", "docs", ".ci"]
SOURCE_SUFFIXES = {".py", ".sql", ".yaml", ".yml", ".sh", ".toml", ".md", ""}

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
REPO_PATH = re.compile(r"^(?:" + "|".join(re.escape(d) for d in REPO_DIRS) + r")/[\w./*-]*$")
CITATION = re.compile(r"\b((?:docs/)?[\w-]+\.md|README)\s+\"([^\"\n]+)\"")
DESIGN_SECTION = re.compile(r"docs/design\.md sections? (\d+)(?: and (\d+))?")
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")


def headings(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text("utf-8"))
    return [line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")]


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def sources() -> Iterator[Path]:
    yield from (ROOT / name for name in ("Makefile", "pyproject.toml", "README.md"))
    yield from TOP_DOCS
    for folder in REPO_DIRS:
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in SOURCE_SUFFIXES and path != SELF:
                yield path


def cited_page(name: str) -> Path:
    return ROOT / ("README.md" if name == "README" else name)


def test_readme_is_the_map() -> None:
    text = (ROOT / "README.md").read_text("utf-8")
    assert len(text.splitlines()) <= 200
    assert "make local-run" in text and "make test" in text
    for code in ("0", "1", "65", "70", "75", "78", "130"):
        assert f"| `{code}` |" in text, code
    assert ".ci/run" in text and "minutes" in text


def test_every_repository_path_the_docs_name_exists() -> None:
    missing = []
    for page in [*PAGES, *TOP_DOCS]:
        text = FENCE.sub("", page.read_text("utf-8"))
        for span in INLINE_CODE.findall(text):
            for token in span.split():
                path = token.rstrip(".,;:)")
                if REPO_PATH.match(path) and not any(ROOT.glob(path)):
                    missing.append(f"{page.name}: {path}")
    assert not missing


def test_every_link_between_pages_resolves() -> None:
    broken = []
    for page in [*PAGES, *TOP_DOCS]:
        for target in LINK.findall(FENCE.sub("", page.read_text("utf-8"))):
            if re.match(r"^[a-z]+:", target):
                continue  # a web address
            file, _, fragment = target.partition("#")
            linked = (page.parent / file).resolve() if file else page
            if not linked.exists():
                broken.append(f"{page.name}: {target}")
            elif fragment and fragment not in {anchor(h) for h in headings(linked)}:
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken


def test_every_section_cited_by_name_exists() -> None:
    """`README "X"`, `docs/x.md "X"`, `BENCHMARKS.md "X"`: the page has a heading that
    starts with X (a citation may shorten a long heading)."""
    broken = []
    for source in sources():
        for name, section in CITATION.findall(source.read_text("utf-8")):
            page = cited_page(name)
            if page.suffix != ".md" or not page.exists():
                page = ROOT / "docs" / name  # a page citing its neighbour by bare name
            where = f"{source.relative_to(ROOT)}: {name} {section!r}"
            if not page.exists():
                broken.append(f"{where} (no such page)")
            elif not any(h.startswith(section) for h in headings(page)):
                broken.append(f"{where} (no such heading)")
    assert not broken


def test_every_design_section_cited_by_number_exists() -> None:
    numbered = {h.split(".")[0] for h in headings(ROOT / "docs" / "design.md") if h[:1].isdigit()}
    cited = set()
    for source in sources():
        for first, second in DESIGN_SECTION.findall(source.read_text("utf-8")):
            cited |= {first, second} - {""}
    assert cited, "nothing cites docs/design.md by section: the pattern is wrong"
    assert cited <= numbered


def test_nothing_points_outside_the_repository() -> None:
    outside = "shared" + "/"  # spelled so that this file does not match itself
    found = [
        str(source.relative_to(ROOT))
        for source in sources()
        if source.suffix in {".py", ".md"} and outside in source.read_text("utf-8")
    ]
    assert not found
    old_contract = "DESIGN" + " section"  # the file outside, cited before docs/design.md
    assert not [str(s.relative_to(ROOT)) for s in sources() if old_contract in s.read_text("utf-8")]
