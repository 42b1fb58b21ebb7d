"""Options declared once and validated by the base class, for estimators and problems alike.

A configurable class declares its options as a class attribute, as ``torch.distributions`` declares
``arg_constraints``::

    class REBAR(Estimator):
        options_spec = {"temperature": number(0.5, positive=True), "eta": number(1.0)}

:class:`Configurable` then accepts exactly those keywords, checks each value and sets it as an
attribute; a bad value raises a one-line :class:`ConfigError` naming the key as it is written in a
config (``estimator.temperature``) and what is allowed. Problems (``bench.problems``) use the same
helpers, so there is one validation path for both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable


class ConfigError(ValueError):
    """A configuration value that is not allowed; the message names the key and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")


@dataclass(frozen=True)
class Option:
    """One declared option: its default and the check that normalises a value or raises."""

    default: Any
    check: Callable[[str, Any], Any]
    doc: str = ""


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def check_number(key: str, value: Any, *, positive: bool = False, integer: bool = False, minimum=None,
                 maximum=None, below=None) -> Any:
    """A finite number (an integer if ``integer``) within the stated bounds, else :class:`ConfigError`."""
    kind = "an integer" if integer else "a number"
    if integer and isinstance(value, float) and value.is_integer() and not isinstance(value, bool):
        value = int(value)
    if not _is_number(value) or (integer and not isinstance(value, int)):
        raise ConfigError(key, value, f"must be {kind}")
    if not math.isfinite(value):
        raise ConfigError(key, value, "must be a finite number")
    if positive and not value > 0:
        raise ConfigError(key, value, f"must be {kind} > 0")
    if minimum is not None and value < minimum:
        raise ConfigError(key, value, f"must be {kind} >= {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(key, value, f"must be {kind} <= {maximum}")
    if below is not None and not value < below:
        raise ConfigError(key, value, f"must be {kind} < {below}")
    return value


def check_choice(key: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(key, value, f"choose one of {', '.join(map(str, choices))}")
    return value


def check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, value, "choose true or false")
    return value


def check_number_list(key: str, values: Any, min_len: int = 1) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigError(key, values, "must be a list of numbers")
    out = [float(check_number(key, v)) for v in list(values)]
    if len(out) < min_len:
        raise ConfigError(key, values, f"must be a list of at least {min_len} numbers")
    return out


# Declarations: each returns an Option whose check normalises the value.

def number(default, *, positive: bool = False, minimum=None, maximum=None, below=None, doc: str = "") -> Option:
    return Option(default, lambda k, v: float(check_number(k, v, positive=positive, minimum=minimum, maximum=maximum,
                                                           below=below)), doc)


def integer(default, *, minimum=None, maximum=None, doc: str = "") -> Option:
    return Option(default, lambda k, v: check_number(k, v, integer=True, minimum=minimum, maximum=maximum), doc)


def probability(default, doc: str = "") -> Option:
    def check(key, value):
        value = float(check_number(key, value))
        if not 0.0 < value < 1.0:
            raise ConfigError(key, value, "must be a probability with 0 < p < 1")
        return value
    return Option(default, check, doc)


def choice(default, choices: Iterable[Any], doc: str = "") -> Option:
    choices = tuple(choices)
    return Option(default, lambda k, v: check_choice(k, v, choices), doc)


def flag(default: bool, doc: str = "") -> Option:
    return Option(default, check_bool, doc)


def numbers(default, *, min_len: int = 1, doc: str = "") -> Option:
    return Option(tuple(default), lambda k, v: check_number_list(k, v, min_len), doc)


class Configurable:
    """Base of estimators and problems: ``Class(**options)`` validates the declared options.

    Subclasses declare ``options_spec`` and may override :meth:`setup` for checks that involve
    several options or for derived attributes (called after every option is set).
    """

    kind: ClassVar[str] = "component"  # "estimator" or "problem": the prefix of the option keys
    name: ClassVar[str]
    summary: ClassVar[str] = ""  # one line for the README's tables: the formula (estimators), the setting (problems)
    options_spec: ClassVar[dict[str, Option]] = {}

    def __init__(self, **options: Any):
        unknown = [k for k in options if k not in self.options_spec]
        if unknown:
            allowed = ", ".join(self.options_spec) or "no options"
            raise ConfigError(f"{self.kind}.{unknown[0]}", options[unknown[0]], f"{self.name} takes {allowed}")
        for key, spec in self.options_spec.items():
            value = options.get(key, spec.default)
            setattr(self, key, spec.check(f"{self.kind}.{key}", value))
        self.setup()

    def setup(self) -> None:
        """Cross-option checks and derived attributes (after the options are set)."""

    def options(self) -> dict[str, Any]:
        """The options that distinguish this component's jobs (written to results)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in
                ((k, getattr(self, k)) for k in self.options_spec)}

    def describe(self) -> str:
        """The name, with the options that differ from the defaults: ``rebar(temperature=0.1)``."""
        defaults = {k: (list(v.default) if isinstance(v.default, tuple) else v.default)
                    for k, v in self.options_spec.items()}
        opts = ", ".join(f"{k}={v}" for k, v in self.options().items() if v != defaults[k])
        return f"{self.name}({opts})" if opts else self.name

    def __repr__(self) -> str:
        return self.describe()
