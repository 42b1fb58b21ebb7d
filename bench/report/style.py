"""One estimator, one look: a fixed colour and marker per estimator label in every figure, and the
facet grid every figure draws on.

A label that is a preset's own (``conf/estimator/NAME.yaml``, as ``Estimator.describe()`` writes
it) gets that preset's colour and marker (``LOOKS``); any other label (other options of an
estimator) gets its estimator's colour and a marker chosen from the label's text, so the look of a
label never depends on which other labels share the figure.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import seaborn as sns

# The presets' looks, chosen so that estimators that share a figure do not look alike (a related
# family gets distinct colours; every pair (colour, marker) is unique). A preset not listed here, or
# a label with other options, falls back deterministically (see ``look``).
LOOKS = {
    "score_function": ("#000000", "o"), "score_function_baseline": ("#1f77b4", "s"),
    "score_function_optimal": ("#17becf", "D"), "score_function_loo": ("#7f7f7f", "s"), "rloo": ("#2ca02c", "^"), "dr_grpo": ("#ff7f0e", "v"),
    "grpo": ("#d62728", "P"), "grpo_no_length_norm": ("#e377c2", "X"), "grpo_batch_scale": ("#8c564b", "*"),
    "reparameterization": ("#9467bd", "h"), "measure_valued": ("#bcbd22", "p"), "exact": ("#cab2d6", "x"),
    "arm": ("#1a1a6e", "<"), "disarm": ("#d4a017", ">"), "rebar": ("#c51b7d", "8"), "relax": ("#67001f", "H"),
    "reinmax": ("#01665e", "^"), "indecater": ("#7fbc41", "s"), "gumbel_softmax": ("#b15928", "D"),
    "straight_through": ("#fb9a99", "v"),
}
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#000000", "#1a1a6e", "#d4a017", "#c51b7d", "#67001f", "#01665e", "#7fbc41"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d", "8", "H"]


@lru_cache(maxsize=1)
def _presets() -> tuple[dict, dict]:
    """label -> preset name (the label a preset's estimator writes), and estimator name -> its
    first preset."""
    from ..presets import build, preset_names

    by_label, by_name = {}, {}
    for name in preset_names("estimator"):
        est = build("estimator", name)
        by_label.setdefault(est.describe(), name)
        by_name.setdefault(est.name, name)
    return by_label, by_name


def _hash(text: str) -> int:
    return zlib.crc32(text.encode())


def look(label: str) -> tuple[str, str]:
    """``(colour, marker)`` of an estimator label: its preset's, or, for other options of an
    estimator, its estimator's colour with a marker chosen from the label's text."""
    by_label, by_name = _presets()
    preset = by_label.get(label)
    if preset is None and label in LOOKS:
        preset = label
    if preset is not None:
        return LOOKS.get(preset, (COLOURS[_hash(preset) % len(COLOURS)], MARKERS[_hash(preset) % len(MARKERS)]))
    name = label.split("(")[0].strip()
    colour = LOOKS.get(by_name.get(name, name), (COLOURS[_hash(name) % len(COLOURS)], ""))[0]
    return colour, MARKERS[_hash(label) % len(MARKERS)]


def label_order(labels) -> list[str]:
    """Labels in the order of ``LOOKS`` (then by text): the order of every legend."""
    by_label, by_name = _presets()
    order = {name: i for i, name in enumerate(LOOKS)}

    def key(lab):
        preset = by_label.get(lab) or by_name.get(lab.split("(")[0].strip()) or lab
        return order.get(preset, len(order)), lab

    return sorted(set(labels), key=key)


def palette(labels) -> dict:
    return {lab: look(lab)[0] for lab in set(labels)}


def markers(labels) -> dict:
    return {lab: look(lab)[1] for lab in set(labels)}


def facet_grid(data, col: str, *, hue: str | None = None, row: str | None = None, height: float = 3.6,
               aspect: float = 1.3, **kw) -> sns.FacetGrid:
    """A grid of panels, one per value of ``col`` (three to a row unless ``row`` is given), with the
    estimators' fixed colours when ``hue`` is the label."""
    if hue is not None:
        kw.setdefault("palette", palette(data[hue]))
        kw.setdefault("hue_order", label_order(data[hue]))
        kw.setdefault("hue_kws", {"marker": [look(lab)[1] for lab in kw["hue_order"]]})
    wrap = None if row is not None else min(3, max(1, data[col].nunique()))
    # dropna=False: a column that does not apply to some estimator (NaN there) must not drop its rows
    return sns.FacetGrid(data, col=col, row=row, col_wrap=wrap, sharex=False, sharey=False, height=height,
                         aspect=aspect, dropna=False, hue=hue, **kw)
