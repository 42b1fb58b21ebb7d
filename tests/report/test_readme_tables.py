"""The generated sections of the README and the results/ pages agree with their sources
(``bench.readme``): the tables of registered components and every measured table."""

import pytest

from bench import readme
from bench.readme import Missing, fill


def test_the_pages_agree_with_the_registry_and_the_committed_results():
    stale, missing = readme.check()
    assert not stale, f"run python -m bench.readme: {stale}"
    if missing:  # a component added since the tables were written: reported, the page is not wrong
        pytest.skip("; ".join(missing) + " (run python -m bench.readme)")


def test_fill_rewrites_between_markers_keeps_indentation_and_leaves_missing_sections():
    text = "a\n  <!-- one -->\n  old\n  <!-- /one -->\nb\n<!-- two -->\nkept\n<!-- /two -->\n"

    def two():
        raise Missing("results/x.csv")

    new, skipped = fill(text, {"one": lambda: "| x |\n\n| y |", "two": two})
    assert new == "a\n  <!-- one -->\n  | x |\n\n  | y |\n  <!-- /one -->\nb\n<!-- two -->\nkept\n<!-- /two -->\n"
    assert skipped == ["two: results/x.csv is missing"]
    assert fill(new, {"one": lambda: "| x |\n\n| y |"})[0] == new  # idempotent


def test_a_component_table_lacking_a_new_preset_is_missing_not_stale(monkeypatch):
    """A table written before a component was added lacks its row: reported as missing; a table
    with a wrong row is stale."""
    page = readme.Page(readme.ROOT / "README.md")
    make = readme.PAGES[page.path]["applicability-table"]
    text = fill("<!-- applicability-table -->\n<!-- /applicability-table -->\n", {"applicability-table": make}, page)[0]
    lines = text.splitlines()
    without_rloo = "\n".join(line for line in lines if not line.startswith("| `rloo`"))
    assert readme.missing_components(without_rloo, "applicability-table", make, page) == ["rloo"]
    wrong = text.replace("| `rloo` | ✓ 1", "| `rloo` | –", 1)
    assert wrong != text and readme.missing_components(wrong, "applicability-table", make, page) is None


def test_the_check_compares_what_reproduces_not_timings_or_machine_names():
    page = "\n".join(["torch 2.13.0+cpu, 2 threads, float32, x86_64; each figure the median:", "",
                      "| problem | n | harness /s | harness ÷ naive |", "|---|---|---|---|",
                      "| gaussian_quadratic | 1 | 3.99e+07 | 9,308x |"])
    elsewhere = page.replace("x86_64", "aarch64").replace("3.99e+07", "1.2e+07").replace("9,308x", "812x")
    assert readme.reproducible(page) == readme.reproducible(elsewhere)
    assert readme.reproducible(page) != readme.reproducible(page.replace("| 1 |", "| 10 |"))
    training = "| estimator | final objective | run-steps/s |\n|:--|:--|--:|\n| rloo | 3.4 ± 0.37 | 3960 |"
    assert readme.reproducible(training) == readme.reproducible(training.replace("3960", "100"))
    assert readme.reproducible(training) != readme.reproducible(training.replace("3.4", "3.5"))
