"""One estimator, one look: a fixed colour and marker per estimator label in every figure, and the
facet grid every figure draws on.

A label that is a preset's own (``conf/estimator/NAME.yaml``, as ``Estimator.describe()`` writes
it) gets that preset's colour and marker, by the presets' order; any other label (other options of
an estimator) gets its estimator's colour and a marker chosen from the label's text, so the look of
a label never depends on which other labels share the figure.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import seaborn as sns

# Twenty colours that stay apart from each other (no light/dark pairs), then the markers.
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#393b79", "#7f7f7f", "#637939", "#843c39", "#7b4173", "#e6550d", "#31a354", "#000000", "#a55194",
           "#6baed6", "#8c6d31"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d"]


@lru_cache(maxsize=1)
def _presets() -> tuple[dict, dict]:
    """label -> preset index, and estimator name -> first preset index."""
    from ..presets import build, preset_names

    by_label, by_name = {}, {}
    for i, name in enumerate(preset_names("estimator")):
        est = build("estimator", name)
        by_label.setdefault(est.describe(), i)
        by_name.setdefault(est.name, i)
    return by_label, by_name


def look(label: str) -> tuple[str, str]:
    """``(colour, marker)`` of an estimator label."""
    by_label, by_name = _presets()
    if label in by_label:
        i = by_label[label]
        return COLOURS[i % len(COLOURS)], MARKERS[i % len(MARKERS)]
    name = label.split("(")[0].strip()
    i = by_name.get(name, zlib.crc32(name.encode()) % len(COLOURS))
    return COLOURS[i % len(COLOURS)], MARKERS[zlib.crc32(label.encode()) % len(MARKERS)]


def label_order(labels) -> list[str]:
    """Labels in the presets' order (then by text), the order of every legend."""
    by_label, by_name = _presets()
    key = lambda lab: (by_label.get(lab, by_name.get(lab.split("(")[0].strip(), 999)), lab)  # noqa: E731
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
    wrap = None if row is not None else min(3, max(1, data[col].nunique()))
    # dropna=False: a column that does not apply to some estimator (NaN there) must not drop its rows
    return sns.FacetGrid(data, col=col, row=row, col_wrap=wrap, sharex=False, sharey=False, height=height,
                         aspect=aspect, dropna=False, hue=hue, **kw)
