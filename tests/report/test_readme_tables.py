"""The README's measured tables are written from the committed result files (bench.readme)."""

from bench import readme
from bench.readme import Missing, fill


def test_the_readme_agrees_with_the_committed_results():
    assert readme.main(["--check"]) == 0, "run python -m bench.readme after regenerating results/"


def test_fill_rewrites_between_markers_keeps_indentation_and_leaves_missing_sections():
    text = "a\n  <!-- one -->\n  old\n  <!-- /one -->\nb\n<!-- two -->\nkept\n<!-- /two -->\n"

    def two():
        raise Missing("results/x.csv")

    new, skipped = fill(text, {"one": lambda: "| x |\n\n| y |", "two": two})
    assert new == "a\n  <!-- one -->\n  | x |\n\n  | y |\n  <!-- /one -->\nb\n<!-- two -->\nkept\n<!-- /two -->\n"
    assert skipped == ["two: results/x.csv is missing"]
    assert fill(new, {"one": lambda: "| x |\n\n| y |"})[0] == new  # idempotent
