"""The process edge prints one readable line whatever an error's text holds."""

from common.platform.redact import register_secret
from entry.cli import MAX_ERROR_LINE, one_line


def test_an_error_text_with_newlines_becomes_one_line() -> None:
    text = (
        "internal error: NumericValueOutOfRange: overflow\nCONTEXT:  COPY stage, line 1\n - report"
    )
    assert (
        one_line(text)
        == "internal error: NumericValueOutOfRange: overflow CONTEXT: COPY stage, line 1 - report"
    )


def test_a_huge_error_text_is_cut_after_secrets_are_masked() -> None:
    register_secret("edge-secret-4f2a")
    line = one_line("key " + "k" * 100_000 + " edge-secret-4f2a")
    assert len(line) == MAX_ERROR_LINE and line.endswith("...")
    assert "edge-se" not in one_line("x" * 990 + "edge-secret-4f2a")
