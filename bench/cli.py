"""What ``python -m bench.run`` and ``python -m bench.train`` do around Hydra, so that a mistake on the
command line is one line, not a traceback:

* ``-m`` after the overrides is moved first (Hydra takes it only there);
* a key the benchmark does not read (``n_sample=5`` or ``+n_sample=5``) is refused, naming the
  closest known key (Hydra would suggest ``+n_sample=5``, which then runs with the default
  ``n_samples``);
* an output folder that cannot be written is refused;
* Ctrl-C ends with the command that resumes the sweep (``resume=true``).
"""

from __future__ import annotations

import difflib
import shlex
import tempfile
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from omegaconf import OmegaConf

from .config import CONF_DIR

# Groups (``estimator=...``, ``problem.k=...``: their options are checked by the components).
GROUPS = ("estimator", "problem", "optimizer", "experiment")


def multirun_flag_first(argv: list[str]) -> list[str]:
    """``python -m bench.train problem=x -m estimator=a,b`` as ``... -m problem=x estimator=a,b``."""
    flags = [a for a in argv[1:] if a in ("-m", "--multirun")]
    if not flags:
        return argv
    return [argv[0], flags[0], *[a for a in argv[1:] if a not in ("-m", "--multirun")]]


def known_root_keys(config_name: str) -> set[str]:
    """The root keys of a primary config and of the configs its defaults list includes."""
    keys: set[str] = set()
    cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / f"{config_name}.yaml"))
    for entry in cfg.get("defaults", []):
        if isinstance(entry, str) and entry != "_self_":
            keys |= known_root_keys(entry)
    return keys | {k for k in cfg if k not in ("defaults", "hydra")}


def _overrides(argv: list[str]) -> list[tuple[str, str]]:
    """``(key, value)`` of every ``key=value`` argument (``+``/``++``/``~`` prefixes removed)."""
    out = []
    for arg in argv[1:]:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        out.append((key.lstrip("+~"), value))
    return out


def unknown_key_error(argv: list[str], known: set[str]) -> str | None:
    """A one-line refusal of the first override that names no key of the benchmark."""
    for key, value in _overrides(argv):
        if key.startswith("hydra") or "/" in key or key.split(".")[0] in GROUPS:
            continue
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else f"; the keys are {', '.join(sorted(known))}"
            return f"error: {key}={value} is not a key of this benchmark{hint}"
    return None


TRAINING_KEYS = ("steps", "n_seeds", "log_every", "variance_every", "variance_replicates", "optimizer")


def experiment_error(argv: list[str], config_name: str) -> str | None:
    """A one-line refusal of ``python -m bench.run +experiment=NAME`` where NAME is a training
    experiment (its keys are ``bench.train``'s), naming the command that runs it."""
    if config_name != "config":
        return None
    for key, value in _overrides(argv):
        if key != "experiment":
            continue
        path = CONF_DIR / "experiment" / f"{value}.yaml"
        if not path.is_file():
            continue
        cfg = OmegaConf.to_container(OmegaConf.load(path))
        overrides = [next(iter(d)) for d in cfg.get("defaults", []) if isinstance(d, dict)]
        if any(k in cfg for k in TRAINING_KEYS) or "override /optimizer" in overrides:
            return (f"error: experiment={value} is a training experiment: run it with python -m bench.train -m "
                    f"+experiment={value}")
    return None


def output_dir_error(argv: list[str]) -> str | None:
    """A one-line refusal when the run or sweep folder (or the results/ default) cannot be written."""
    folders = [value for key, value in _overrides(argv) if key in ("hydra.sweep.dir", "hydra.run.dir")]
    for folder in folders or ["results"]:
        path = Path(folder.split("${")[0] or ".")  # up to the first interpolation (${now:...})
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path):
                pass
        except OSError as e:
            return (f"error: {folder} cannot be written ({e.strerror or e}); choose another folder with "
                    f"hydra.sweep.dir=... (or hydra.run.dir=...)")
    return None


class SweepFolder:
    """The folder of the sweep under way (set by the entry points' ``main`` at each job), for the
    resume hint after Ctrl-C: Hydra's own record of it is gone once the job is interrupted."""

    path: str | None = None


@dataclass(frozen=True)
class JobContext:
    """The Hydra job under way: its output folder, whether it is a single run (not a sweep), its job
    number (0 for a single run), its command-line overrides and the sweeper's ``params``."""

    out_dir: Path
    single: bool
    job: int
    overrides: list[str]
    sweeper_params: object


def job_context() -> JobContext:
    """The :class:`JobContext` of the job under way; a sweep's folder is recorded for the resume hint."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    single = hc.mode == RunMode.RUN
    if not single:
        SweepFolder.path = str(hc.sweep.dir)
    return JobContext(Path(hc.runtime.output_dir), single, 0 if single else hc.job.num,
                      list(hc.overrides.task), hc.sweeper.get("params"))


def resume_command(module: str, argv: list[str]) -> str:
    """The command that picks an interrupted sweep up."""
    given = [v for k, v in _overrides(argv) if k == "hydra.sweep.dir"]
    folder = given[0] if given else SweepFolder.path or "<the sweep folder>"
    args = [a for a in argv[1:] if not a.startswith(("hydra.sweep.dir=", "resume="))]
    return shlex.join(["python", "-m", module, *args, f"hydra.sweep.dir={folder}", "resume=true"])


def entry(main: Callable[[], object], module: str, config_name: str) -> None:
    """Run a Hydra ``main`` as the command ``python -m MODULE``, with the checks above."""
    argv = multirun_flag_first(sys.argv)
    message = (unknown_key_error(argv, known_root_keys(config_name)) or experiment_error(argv, config_name)
               or output_dir_error(argv))
    if message:
        print(message, file=sys.stderr)
        sys.exit(1)
    sys.argv = argv
    try:
        main()
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished jobs keep their results. To resume: {resume_command(module, argv)}",
              file=sys.stderr)
        sys.exit(130)
