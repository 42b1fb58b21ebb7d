"""The README's speed table."""

from __future__ import annotations

import math

import pandas as pd


def _fmt(v, pattern="{:.3g}") -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else pattern.format(v)


def markdown_table(df: pd.DataFrame, only: tuple[str, ...] | None = None) -> str:
    """The speed table (``only``: these columns, by their ``perf.csv`` names)."""
    cols = [("naive loop /s", "naive_per_s", "{:.3g}"), ("harness /s", "harness_per_s", "{:.3g}"),
            ("compiled /s", "compiled_per_s", "{:.3g}"), ("closed form /s", "closed_form_per_s", "{:.3g}"),
            ("optax + jax.jit /s", "peer_per_s", "{:.3g}"), ("harness ÷ naive", "harness_vs_naive", "{:,.0f}x"),
            ("harness ÷ closed", "harness_vs_closed_form", "{:.2f}"),
            ("compiled ÷ closed", "compiled_vs_closed_form", "{:.2f}"), ("harness ÷ peer", "harness_vs_peer", "{:.2f}"),
            ("compiled ÷ peer", "compiled_vs_peer", "{:.2f}"), ("spread (harness)", "harness_spread", "{:.0%}"),
            ("compile (s)", "compile_s", "{:.1f}"), ("peer's jit (s)", "peer_compile_s", "{:.2f}")]
    cols = [c for c in cols if c[1] in df and df[c[1]].notna().any() and (only is None or c[1] in only)]
    lines = ["| problem | estimator | n | R | " + " | ".join(c[0] for c in cols) + " |",
             "|---" * (4 + len(cols)) + "|"]
    for r in df.to_dict("records"):
        dim = r["dim"]
        dim = int(dim) if isinstance(dim, float) and dim.is_integer() else dim  # read back from a CSV as 1.0
        prob = f"{r['problem']} (dim {dim})" if dim != "" and not pd.isna(dim) else r["problem"]
        lines.append(f"| {prob} | {r['estimator']} | {r['n_samples']} | {r['n_replicates']:.0e} | "
                     + " | ".join(_fmt(r.get(c[1]), c[2]) for c in cols) + " |")
    return "\n".join(lines)
