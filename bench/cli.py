"""What ``python -m bench.run`` and ``python -m bench.train`` do around Hydra, so that a mistake on the
command line is one line, not a traceback:

* ``-m`` after the overrides is moved first (Hydra takes it only there);
* a key the benchmark does not read (``n_sample=5`` or ``+n_sample=5``) is refused, naming the
  closest known key (Hydra would suggest ``+n_sample=5``, which then runs with the default
  ``n_samples``);
* an output folder that cannot be written is refused;
* Ctrl-C, or a scheduler's SIGTERM, ends with the command that resumes the sweep or run (``resume=true``).
"""

from __future__ import annotations

import difflib
import os
import shlex
import signal
import tempfile
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.errors import HydraException
from omegaconf import OmegaConf

from .config import CONF_DIR
from .presets import REGISTRIES, preset, preset_names

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


def _config_dirs(argv: list[str]) -> list[Path]:
    """``conf/`` and the folders given with ``--config-dir DIR`` (or ``-cd DIR``)."""
    dirs = [CONF_DIR]
    for flag, value in zip(argv, argv[1:]):
        if flag in ("--config-dir", "-cd"):
            dirs.append(Path(value))
    dirs += [Path(a.split("=", 1)[1]) for a in argv if a.startswith("--config-dir=")]
    return dirs


def group_choices(group: str, argv: list[str]) -> list[str]:
    """The options of a config group: the registered classes and yamls (``estimator``, ``problem``),
    the yamls (``optimizer``, ``experiment``, in conf/ and any --config-dir), the installed launchers."""
    if group == "hydra/launcher":
        Plugins.instance()  # the launcher plugins register their configs when found
        return sorted(name.removesuffix(".yaml") for name in ConfigStore.instance().list("hydra/launcher"))
    names = set(preset_names(group)) if group in ("estimator", "problem") else set()
    for folder in _config_dirs(argv):
        names |= {p.stem for p in (folder / group).glob("*.yaml")}
    return sorted(names)


def _closest(value: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=3, cutoff=0.4)
    return (f"; did you mean {' or '.join(close)}?" if close else "") + f" (the choices: {', '.join(choices)})"


def group_error(argv: list[str], config_name: str) -> str | None:
    """A one-line refusal of a group option that does not exist (``estimator=nope``,
    ``hydra/launcher=jobllib``, ``+experiment=...``), naming the closest ones; and of a group key
    that none of the chosen options takes (``estimator.temprature=0.5``)."""
    chosen: dict[str, list[str]] = {}
    for key, value in _overrides(argv):
        if key in ("estimator", "problem", "optimizer", "experiment", "hydra/launcher") and "(" not in value:
            choices = group_choices(key, argv)
            for one in value.split(","):
                if one not in choices:
                    return f"error: {key}={one} is not an option of {key}{_closest(one, choices)}"
            chosen[key] = value.split(",")
    if "experiment" in chosen:  # an experiment may choose the groups itself
        return None
    for group in ("estimator", "problem", "optimizer"):
        names = chosen.get(group) or [_default_choice(config_name, group)]
        if group == "optimizer":  # torch.optim's keywords, as the optimizer's yaml lists them
            files = [CONF_DIR / "optimizer" / f"{n}.yaml" for n in names if n]
            if not files or not all(f.is_file() for f in files):
                continue
            allowed = sorted({k for f in files for k in OmegaConf.load(f) if k != "name"})
        else:
            specs = [preset(group, n) for n in names if n in preset_names(group)]
            if len(specs) < len(names) or any("_target_" in s for s in specs):
                continue  # a component from outside: its own class checks its options
            allowed = sorted({k for s in specs for k in REGISTRIES[group][s["name"]].options_spec})
        for key, value in _overrides(argv):
            if key.startswith(f"{group}.") and key.split(".", 1)[1] not in allowed:
                option = key.split(".", 1)[1]
                takes = f"takes {', '.join(allowed)}" if allowed else "takes no options"
                close = difflib.get_close_matches(option, allowed, n=1, cutoff=0.5)
                hint = f"; did you mean {group}.{close[0]}?" if close else ""
                return (f"error: {key}={value} is not an option of {group}={','.join(names)} (it {takes}){hint}")
    return None


def _default_choice(config_name: str, group: str) -> str:
    for entry in OmegaConf.to_container(OmegaConf.load(CONF_DIR / f"{config_name}.yaml")).get("defaults", []):
        if isinstance(entry, dict) and group in entry:
            return entry[group]
    return ""


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


class OutputFolder:
    """The folder of the sweep (or single run) under way, set at each job, for the resume hint
    after Ctrl-C or SIGTERM: Hydra's own record of it is gone once the job is interrupted."""

    path: str | None = None


@dataclass(frozen=True)
class JobContext:
    """The Hydra job under way: its output folder, whether it is a single run (not a sweep), its job
    number (0 for a single run), its command-line overrides and the sweeper's ``params``."""

    out_dir: Path
    sweep_dir: Path  # the sweep's folder (a single run's own)
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
    OutputFolder.path = str(hc.runtime.output_dir if single else hc.sweep.dir)
    return JobContext(Path(hc.runtime.output_dir), Path(hc.runtime.output_dir if single else hc.sweep.dir), single,
                      0 if single else hc.job.num,
                      list(hc.overrides.task), hc.sweeper.get("params"))


def resume_command(module: str, argv: list[str]) -> str | None:
    """The command that picks an interrupted sweep (or single run) up, ready to paste; ``None``
    before any job started (nothing to resume)."""
    key = "hydra.sweep.dir" if any(a in ("-m", "--multirun") for a in argv) else "hydra.run.dir"
    given = [v for k, v in _overrides(argv) if k == key]
    folder = given[0] if given else OutputFolder.path
    if folder is None:
        return None
    args = [a for a in argv[1:] if not a.startswith((f"{key}=", "resume="))]
    return shlex.join(["python", "-m", module, *args, f"{key}={folder}", "resume=true"])


class SweepUnderWay:
    """Set by the sweep's callback in the process that launches the jobs: how to gather what the
    jobs left when the launcher itself fails (a job killed under SLURM makes submitit raise)."""

    finish: Callable[[], None] | None = None


def _terminated(signum, frame):
    raise KeyboardInterrupt  # a scheduler's SIGTERM ends a job as Ctrl-C does: with the resume line


def entry(main: Callable[[], object], module: str, config_name: str) -> None:
    """Run a Hydra ``main`` as the command ``python -m MODULE``, with the checks above."""
    argv = multirun_flag_first(sys.argv)
    message = (unknown_key_error(argv, known_root_keys(config_name)) or group_error(argv, config_name)
               or experiment_error(argv, config_name) or output_dir_error(argv))
    if message:
        print(message, file=sys.stderr)
        sys.exit(1)
    sys.argv = argv
    signal.signal(signal.SIGTERM, _terminated)
    # Hydra's own handler would print a failure and exit; with this set it lets the failure reach here.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        main()
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        if SweepUnderWay.finish is not None:  # the launcher failed (a job killed under SLURM): keep the others
            print(f"error: the launcher stopped ({type(error).__name__}: {first}); gathering what the jobs left",
                  file=sys.stderr)
            SweepUnderWay.finish()
            sys.exit(1)
        if isinstance(error, HydraException):
            print(f"error: {first}", file=sys.stderr)
            sys.exit(1)
        raise
    except KeyboardInterrupt:
        command = resume_command(module, argv)
        print("\ninterrupted; finished jobs keep their results." + (f" To resume: {command}" if command else ""),
              file=sys.stderr)
        sys.exit(130)
