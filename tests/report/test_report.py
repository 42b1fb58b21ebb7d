"""python -m bench.report on real sweeps: every file written, valid images, failures listed,
clear errors on bad input, figures without data skipped with a note."""

import struct

import pandas as pd
import pytest

from bench.report import ReportError, build, load, main

from tests.helpers import run_cli

FAST = ["n_replicates=3000", "timing_min_run_time=0.01"]


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A small real sweep with a not_applicable job and an invalid job among ok ones."""
    out = tmp_path_factory.mktemp("sweep")
    r = run_cli("-m", "estimator=score_function,reparameterization,measure_valued,straight_through",
                "problem=gaussian_quadratic,bernoulli_toy", "n_samples=1,4", "problem.dim=1", *FAST,
                f"hydra.sweep.dir={out}")
    # reparameterization and measure_valued do not apply to bernoulli_toy; straight_through (biased) only to it
    assert r.returncode == 1
    return out


def test_report_writes_every_file(sweep, tmp_path, capsys):
    assert main([str(sweep), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for name in ("variance_vs_samples", "bias", "time", "direction", "accuracy_vs_cost"):
        png = tmp_path / f"{name}.png"
        assert str(png) in printed
        w, h = png_size(png)
        assert 300 <= w <= 4000 and 200 <= h <= 4000, (name, w, h)
    assert "skipped variance_vs_key" in printed  # no problem key swept here
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    assert "![Variance against the number of samples](variance_vs_samples.png)" in md
    assert html.count("data:image/png;base64,") == 5
    assert "could not be drawn" not in md
    # the not_applicable jobs are listed with their messages, and the rest is still reported
    assert "not_applicable" in md and "needs rsample" in md
    best = md.split("## Best estimator at equal work")[1].split("##")[0]
    assert "gaussian_quadratic" in best and "| mu " in best
    assert "torch_version" in md and "threads" in md


def test_report_on_a_key_sweep_draws_exact_curves(tmp_path):
    r = run_cli("-m", "estimator=score_function,reparameterization", "problem=gaussian_cosine",
                "problem.k=0.5,1.5,2.5", *FAST, f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    report = build([tmp_path])
    fig = {f.name: f for f in report.figures}
    assert fig["variance_vs_key"].path is not None and "problem.k" in fig["variance_vs_key"].caption
    assert fig["variance_vs_samples"].skipped


def test_results_csv_file_path_and_several_inputs(sweep, tmp_path):
    df = load([sweep / "results.csv", sweep])
    assert len(df) == 2 * len(pd.read_csv(sweep / "results.csv"))


def test_missing_columns_are_a_clear_error_and_new_config_keys_are_not(sweep, tmp_path, capsys):
    df = pd.read_csv(sweep / "results.csv").drop(columns=["variance_se"]).rename(columns={"bias": "bias_norm"})
    bad = tmp_path / "results.csv"
    df.to_csv(bad, index=False)
    with pytest.raises(ReportError, match="missing columns variance_se, bias "):
        load([bad])
    # a root key added to conf/config.yaml is one more configuration column: the report reads it
    extra = tmp_path / "extra" / "results.csv"
    extra.parent.mkdir()
    pd.read_csv(sweep / "results.csv").assign(my_new_root_key=3).to_csv(extra, index=False)
    assert len(load([extra])) == len(pd.read_csv(sweep / "results.csv"))
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert main([str(tmp_path / "nowhere")]) == 2


def test_figures_without_data_are_skipped_with_a_note(sweep, tmp_path):
    df = pd.read_csv(sweep / "results.csv")
    only_failed = df[df["status"] != "ok"]
    path = tmp_path / "results.csv"
    only_failed.to_csv(path, index=False)
    report = build([path], tmp_path / "out")
    assert all(f.skipped for f in report.figures)
    assert (tmp_path / "out" / "report.md").is_file() and (tmp_path / "out" / "report.html").is_file()


def _cut_row(text: str, row: int) -> str:
    """The file with data row ``row`` (from 1) cut halfway, as a killed writer would leave a line."""
    lines = text.splitlines()
    lines[row] = lines[row][: len(lines[row]) // 2]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("damage,match", [
    (lambda text: text[: len(text) - 40], "cut short"),
    (lambda text: _cut_row(text, 5), "row 5 has"),
    (lambda text: text.replace("\n", "\n0,ok,\n", 1), "row 1 has 3 of"),
])
def test_truncated_or_corrupt_results_are_refused_naming_file_and_row(sweep, tmp_path, capsys, damage, match):
    text = (sweep / "results.csv").read_text()
    bad = tmp_path / "results.csv"
    bad.write_text(damage(text))
    with pytest.raises(ReportError, match=match):
        load([bad])
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}") and "\n" not in err


def test_every_estimator_preset_has_its_own_colour():
    """One colour per estimator across every figure: no two presets share one (bar plots have no
    markers to tell them apart)."""
    from bench.presets import build as build_preset, preset_names
    from bench.report.style import look

    labels = {build_preset("estimator", name).describe() for name in preset_names("estimator")}
    colours = {}
    for label in labels:
        colours.setdefault(look(label)[0], []).append(label)
    assert not {c: labs for c, labs in colours.items() if len(labs) > 1}


def test_pinned_looks_are_distinct_and_new_labels_never_take_a_pinned_colour():
    from bench.report.style import FREE_COLOURS, LOOKS, look

    colours = [c for c, _ in LOOKS.values()]
    assert len(set(colours)) == len(colours)
    assert not set(FREE_COLOURS) & set(colours)
    for label in ("my_estimator", "another_one(temperature=0.1)", "x"):
        assert look(label)[0] in FREE_COLOURS and look(label) == look(label)


def test_the_report_only_reads_files():
    """``bench/report`` imports no project module but ``bench.results`` (file names, reading, the
    columns): it never rebuilds problems or estimators from a table."""
    import ast

    from tests.helpers import REPO

    for path in (REPO / "bench" / "report").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                assert node.module == "results", f"{path.name} imports bench.{node.module}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                absolute = isinstance(node, ast.Import) or node.level == 0
                assert not (absolute and any(n.split(".")[0] in ("bench", "estimators") for n in names)), \
                    f"{path.name} imports {names}"


def test_a_log_axis_keeps_small_variances_and_drops_round_off():
    """A real variance 1e-6 of the largest stays on the axis (Dr. GRPO over the max length against
    verl's token sum); a zero variance's float32 round-off (1e-14 of it) does not pull it down."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from bench.report.figures import _clip_log_axis

    fig, ax = plt.subplots()
    _clip_log_axis(ax, pd.Series([2.4e4, 1.0, 2.4e-2 * 0.3, 2.4e4 * 1e-14]))
    low, high = ax.get_ylim()
    plt.close(fig)
    assert low <= 2.4e-2 * 0.3 / 3 * 1.0001 and low > 2.4e4 * 1e-14 and high == 2.4e4 * 3
