"""One estimator, one look: a fixed colour and marker per estimator label in every figure, and the
facet grid every figure draws on.

``LOOKS`` pins the look of every preset's label (as ``Estimator.describe()`` writes it), chosen so
that estimators sharing a figure do not look alike: no two share a colour (a test); the closest
pairs are about 15 apart in CIELAB and differ in marker. A label with
other options of a pinned estimator (``score_function_baseline(baseline=ema, decay=0.99)``) gets its
family's colour and a marker chosen from its text; any other label (a new estimator) a colour that
no pinned label uses and a marker, both chosen from its text, so the look of a label never depends
on which other labels share the figure, and a new one never takes a pinned one's colour.
"""

from __future__ import annotations

import zlib

import seaborn as sns

LOOKS = {
    "score_function": ("#000000", "o"), "score_function_baseline(baseline=ema, decay=0.9)": ("#1f77b4", "s"),
    "score_function_baseline(baseline=optimal)": ("#17becf", "D"),
    "score_function_baseline(baseline=loo)": ("#7f7f7f", "P"), "rloo": ("#2ca02c", "^"), "dr_grpo": ("#ff7f0e", "v"),
    "grpo": ("#d62728", "P"), "grpo_no_length_norm": ("#ff00f0", "X"), "grpo_batch_scale": ("#8c564b", "*"),
    "reparameterization": ("#9467bd", "h"), "measure_valued": ("#bcbd22", "p"), "exact": ("#cab2d6", "x"),
    "arm": ("#1a1a6e", "<"), "disarm": ("#786900", ">"), "rebar": ("#781e3c", "8"), "relax": ("#b4005a", "H"),
    "reinmax": ("#004b1e", "d"), "indecater": ("#96b478", "s"), "gumbel_softmax": ("#5a00a5", "D"),
    "straight_through": ("#f09678", "v"), "dapo": ("#0069ff", "d"), "bnpo": ("#00c396", "s"),
    "dr_grpo_max_length": ("#ff69d2", "^"), "grpo_token_sum": ("#0000ff", "<"),
    "reinforce_plus_plus": ("#00e100", "o"), "reinforce_plus_plus_baseline": ("#c369ff", "h"),
    "opo": ("#780069", "D"), "remax": ("#4b3c5a", "*"), "gpg": ("#781e00", "X"),
    "score_function_delta": ("#e6ab02", "p"), "score_function_delta(coefficient=loo)": ("#a6761d", "X"),
    "gumbel_rao": ("#1b9e77", "^"), "double_cv": ("#007878", "*"),
    # RLOO's off-policy losses (group_off_policy, group_off_policy_steps) share their figures
    "rloo+is_sequence": ("#961ef0", "P"), "rloo+ppo_clip": ("#f0005a", "o"), "rloo+dual_clip": ("#b400b4", "s"),
    "rloo+gspo": ("#003c3c", "D"), "rloo+cispo": ("#003cf0", "^"), "rloo+sapo": ("#3c003c", "v"),
    "rloo+geo_mean": ("#3c1e00", "X"),
}
# The colour of an estimator's labels with options other than a preset's, by estimator name.
FAMILY = {"score_function_baseline": "#1f77b4", "group_advantage": "#ff7f0e"}
# Colours for labels of estimators that LOOKS does not pin: none of them is a pinned colour.
FREE_COLOURS = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#5254a3", "#8ca252", "#bd9e39",
                "#ad494a", "#a55194", "#6b6ecf", "#e7969c", "#de9ed6", "#3182bd", "#e6550d", "#31a354",
                "#756bb1", "#636363", "#9c9ede", "#cedb9c"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d", "8", "H"]


def _hash(text: str) -> int:
    return zlib.crc32(text.encode())


def _family(label: str) -> str:
    return label.split("(")[0].strip()


def look(label: str) -> tuple[str, str]:
    """``(colour, marker)`` of an estimator label (see the module docstring)."""
    if label in LOOKS:
        return LOOKS[label]
    name = _family(label)
    colour = (LOOKS.get(name, (FAMILY[name], ""))[0] if name in LOOKS or name in FAMILY
              else FREE_COLOURS[_hash(name) % len(FREE_COLOURS)])
    return colour, MARKERS[_hash(label) % len(MARKERS)]


def label_order(labels) -> list[str]:
    """Labels in the order of ``LOOKS`` (then by text): the order of every legend."""
    order = {label: i for i, label in enumerate(LOOKS)}
    family = {_family(label): i for label, i in reversed(list(order.items()))}

    def key(lab):
        return order.get(lab, family.get(_family(lab), len(order))), lab

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
