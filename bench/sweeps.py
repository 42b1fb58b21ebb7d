"""A sweep folder's identity and resuming by configuration.

* Each job writes ``job.json`` in its folder: its configuration (as its result rows record it,
  without the keys that change no number) and that configuration's hash; its rows carry the hash
  (``config_hash``).
* The sweep under way holds ``.sweep.lock`` (its process, machine and command): a second sweep
  into the same folder is refused in one line naming the first; a lock left by a process that has
  ended is taken over, with a line saying so.
* ``sweep.json`` lists the sweep's jobs (number and overrides) and, at the end, each one's hash:
  the sweep's results are gathered from those jobs only, never from folders an earlier, other sweep
  left there (kept, and named).
* ``resume=true`` finds each job's configuration wherever a complete result of it sits (its own
  folder, another job's, or ``superseded/``), keeps it, and runs only what is new or changed; a
  folder that holds another configuration's result has it moved to ``superseded/HASH`` (never
  deleted) and the job's line says which keys changed. ``resume=retry`` also runs again the jobs
  whose result is an error.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import socket
import sys
from pathlib import Path

import pandas as pd
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # where Hydra expands a sweep into jobs
from hydra.core.override_parser.overrides_parser import OverridesParser

from .config import recorded
from .results import (CURVES_FILE, JOB_FILE, JOB_IDENTITY_FILE, LOCK_FILE, MANIFEST_FILE, VARIANCE_FILE,
                      read_manifest, read_table, write_atomic)

NOT_RESULT_KEYS = ("resume", "progress", "allow_not_applicable")  # they change no number of a job
JOB_FILES = (JOB_FILE, CURVES_FILE, VARIANCE_FILE, JOB_IDENTITY_FILE)
SUPERSEDED = "superseded"


class SweepLocked(Exception):
    """Another sweep is writing into this folder (one line naming it)."""


def identity(config: dict) -> tuple[str, dict]:
    """``(hash, configuration)`` of a job: its recorded configuration without the keys that change
    no number, and the first 16 hex digits of its canonical JSON's SHA-256."""
    flat = {k: v for k, v in recorded(config).items() if k not in NOT_RESULT_KEYS}
    text = json.dumps(flat, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16], json.loads(text)


def write_identity(job_dir: Path, config: dict) -> str:
    digest, flat = identity(config)
    write_atomic(json.dumps({"hash": digest, "config": flat}, indent=1, sort_keys=True) + "\n",
                 Path(job_dir) / JOB_IDENTITY_FILE)
    return digest


def read_identity(job_dir: Path) -> dict | None:
    try:
        return json.loads((Path(job_dir) / JOB_IDENTITY_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _complete(job_dir: Path, retry: bool) -> pd.DataFrame | None:
    """A job folder's result when it is complete (written in full: files are renamed into place),
    readable and, with ``retry``, not an error."""
    try:
        df = read_table(job_dir / JOB_FILE)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None
    if df.empty or "status" not in df or (retry and str(df["status"].iloc[0]) == "error"):
        return None
    if "param" in df and df["status"].isin(("ok", "nonfinite")).any() and not (df["param"] == "total").any():
        return None  # a measurement without its total row: not a complete result
    return df


def changed_keys(old: dict, new: dict) -> list[str]:
    """``key: old -> new`` for every key whose value differs."""
    return [f"{k}: {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def set_aside(job_dir: Path, sweep_dir: Path) -> Path | None:
    """Move a job folder's result files to ``superseded/HASH`` (a fresh name if taken); where they went."""
    old = read_identity(job_dir)
    files = [job_dir / f for f in JOB_FILES if (job_dir / f).is_file()]
    if not files:
        return None
    name = old["hash"] if old else "unknown"
    target = sweep_dir / SUPERSEDED / name
    if target.is_dir() and all((target / f.name).is_file() and (target / f.name).read_bytes() == f.read_bytes()
                               for f in files):
        for f in files:  # already kept there, byte for byte
            f.unlink()
        return target
    n = 1
    while target.exists():
        n += 1
        target = sweep_dir / SUPERSEDED / f"{name}-{n}"
    target.mkdir(parents=True)
    for f in files:
        shutil.move(str(f), str(target / f.name))
    return target


def _candidates(sweep_dir: Path, job_dir: Path):
    """The folders that may hold a job's earlier result: its own first, then the other job folders
    and the superseded ones."""
    yield job_dir
    for folder in sorted(sweep_dir.iterdir()) if sweep_dir.is_dir() else []:
        if folder.is_dir() and folder != job_dir and folder.name.isdigit():
            yield folder
    superseded = sweep_dir / SUPERSEDED
    if superseded.is_dir():
        yield from sorted(f for f in superseded.iterdir() if f.is_dir())


def resume(sweep_dir: Path, job_dir: Path, config: dict, job, retry: bool = False,
           ) -> tuple[pd.DataFrame | None, str | None]:
    """For ``resume=true`` (``retry``: also run again what ended in an error): the job's earlier
    complete result of this very configuration, wherever it sits (moved into its folder if it was
    elsewhere), and a note; ``(None, note)`` when it must run, its folder made ready (another
    configuration's result there set aside, the note saying which keys changed and where it went)."""
    sweep_dir, job_dir = Path(sweep_dir), Path(job_dir)
    digest, flat = identity(config)
    for folder in _candidates(sweep_dir, job_dir):
        found = read_identity(folder)
        if not found or found["hash"] != digest:
            continue
        previous = _complete(folder, retry)
        if previous is None:
            continue
        if folder == job_dir:
            return previous, None
        aside = _make_room(sweep_dir, job_dir, flat)
        job_dir.mkdir(parents=True, exist_ok=True)
        for f in JOB_FILES:
            if (folder / f).is_file():
                shutil.copy2(folder / f, job_dir / f)
        moved = read_table(job_dir / JOB_FILE).assign(job=job, job_dir=str(job_dir))
        write_atomic(moved, job_dir / JOB_FILE)
        for name in (CURVES_FILE, VARIANCE_FILE):  # a training job's curves carry its number too
            if (job_dir / name).is_file() and (job_dir / name).stat().st_size > 0:
                curves = read_table(job_dir / name)
                if "job" in curves:
                    write_atomic(curves.assign(job=job), job_dir / name)
        return moved, f"this configuration's result taken from {folder}" + (
            f"; the other configuration's result this folder held is kept in {aside[0]}" if aside else "")
    aside = _make_room(sweep_dir, job_dir, flat)
    if aside is None:
        return None, None
    target, changes = aside
    shown = "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more" if len(changes) > 4 else "")
    return None, f"configuration changed ({shown}): running again; the earlier result is kept in {target}"


def _make_room(sweep_dir: Path, job_dir: Path, flat: dict) -> tuple[Path, list[str]] | None:
    """Set aside the result of another configuration that ``job_dir`` holds: where it went and the
    keys that differ; ``None`` when the folder holds none (or this very configuration)."""
    old = read_identity(job_dir)
    if old is None or old["config"] == flat:
        return None
    target = set_aside(job_dir, sweep_dir)
    return (target, changed_keys(old["config"], flat)) if target else None


def set_aside_other(sweep_dir: Path, job_dir: Path, config: dict) -> Path | None:
    """Without ``resume``: another configuration's result in the job's folder set aside (never
    overwritten); where it went."""
    aside = _make_room(sweep_dir, job_dir, identity(config)[1])
    return aside[0] if aside else None


# The sweep's lock and manifest (written by the process that launches the jobs).

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(sweep_dir: Path) -> str | None:
    """Hold ``.sweep.lock``; raise :class:`SweepLocked` if a running sweep holds it; a note when a
    stale lock (its process ended) was taken over."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock = sweep_dir / LOCK_FILE
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": command_line()}
    note = None
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                held = json.loads(lock.read_text())
            except (OSError, json.JSONDecodeError):
                held = {}
            if held.get("host") == mine["host"] and held.get("pid") and not _alive(int(held["pid"])):
                lock.unlink(missing_ok=True)
                note = (f"note: {sweep_dir} was locked by a sweep that is no longer running (pid {held['pid']}, "
                        f"started {held.get('started')}): taking it over")
                continue
            raise SweepLocked(f"error: {sweep_dir} is in use by another sweep (pid {held.get('pid')} on "
                              f"{held.get('host')}, started {held.get('started')}: {held.get('command', '?')}); wait "
                              "for it, or choose another hydra.sweep.dir") from None
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
        return note
    raise SweepLocked(f"error: {sweep_dir}: could not take its lock")


def release_lock(sweep_dir: Path) -> None:
    lock = Path(sweep_dir) / LOCK_FILE
    try:
        if json.loads(lock.read_text()).get("pid") == os.getpid():
            lock.unlink()
    except (OSError, json.JSONDecodeError):
        pass


def expand_jobs(config) -> list[list[str]]:
    """The sweep's jobs, each its overrides, as Hydra's basic sweeper makes them (the sweeper's
    ``params`` first, then the command line's)."""
    params = config.hydra.sweeper.get("params") or {}
    overrides = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [job for batch in BasicSweeper.split_arguments(parsed, max_batch_size=None) for job in batch]


def command_line() -> str:
    """The command under way as it was typed: ``python -m bench.run ...``."""
    first = Path(sys.argv[0])
    head = f"python -m {first.parent.name}.{first.stem}" if first.suffix == ".py" else sys.argv[0]
    return " ".join([head, *sys.argv[1:]])


def write_manifest(sweep_dir: Path, jobs: list[list[str]]) -> None:
    write_atomic(json.dumps({"command": command_line(),
                             "jobs": [{"job": i, "overrides": o} for i, o in enumerate(jobs)]}, indent=1) + "\n",
                 Path(sweep_dir) / MANIFEST_FILE)


def complete_manifest(sweep_dir: Path) -> dict:
    """The manifest with each job's configuration hash (from its ``job.json``), written back."""
    manifest = read_manifest(sweep_dir) or {"jobs": []}
    for job in manifest["jobs"]:
        found = read_identity(Path(sweep_dir) / str(job["job"]))
        job["hash"] = found["hash"] if found else None
    write_atomic(json.dumps(manifest, indent=1) + "\n", Path(sweep_dir) / MANIFEST_FILE)
    return manifest


def foreign_folders(sweep_dir: Path, manifest: dict) -> list[str]:
    """Job folders the sweep's manifest does not list (an earlier, other sweep's)."""
    listed = {str(job["job"]) for job in manifest["jobs"]}
    return sorted((f.name for f in Path(sweep_dir).iterdir() if f.is_dir() and f.name.isdigit() and f.name not in listed),
                  key=int)
