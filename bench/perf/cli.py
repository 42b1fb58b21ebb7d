"""``python -m bench.perf``: runs the cases, writes the CSVs and prints the README's tables."""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import pandas as pd
import torch

from estimators import make_estimator

from ..harness import Harness
from ..problems import make_problem
from ..results import RESULTS_DIR, regeneration_folder
from . import __doc__ as PACKAGE_DOC
from .memory import bytes_per_estimate, peak_gpu_memory, peak_memory_mb
from .methods import PEERS_HINT, peers_available
from .rows import cases, chunk_sweep, measure_case
from .tables import markdown_table
from .trainer import trainer_markdown, trainer_table
from .workloads import workload_markdown, workload_table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=PACKAGE_DOC.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter rounds (a few minutes)")
    parser.add_argument("--out", default=None, help="the CSV to write, the other files beside it (default: "
                        "perf.csv in a new results/runs/perf/ folder; with --update-committed, results/perf/perf.csv)")
    parser.add_argument("--update-committed", action="store_true",
                        help="write the committed files the README's speed tables are made from")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1e6 x 100 peak-memory run")
    parser.add_argument("--compile", action="store_true", help="also time the compile=true harness")
    parser.add_argument("--peers", action="store_true", help="also time optax.monte_carlo under jax.jit")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (synchronised timing)")
    parser.add_argument("--no-trainer", action="store_true", help="skip the trainer's table")
    parser.add_argument("--chunk-sweep", action="store_true",
                        help="also the rates against chunk size (and, on a GPU, the peak memory at the default)")
    parser.add_argument("--chunk-elements", type=int, default=None,
                        help="elements per chunk of every method (default: the harness's for the device)")
    parser.add_argument("--workloads", action="store_true",
                        help="only the new workloads (digits VAE enumeration and estimators, sequence_policy "
                        "aggregations): workloads.csv")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: device=cuda is not available on this machine", file=sys.stderr)
        return 2
    peers = args.peers and peers_available()
    if args.peers and not peers:
        print(f"note: {PEERS_HINT}; measuring without it", file=sys.stderr)
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else (platform.processor() or platform.machine())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, {args.device} ({name})")
    tag = "" if args.device == "cpu" else f"_{args.device.replace(':', '')}"  # in the files' names
    out = Path(args.out) if args.out else regeneration_folder(
        "perf", RESULTS_DIR / "perf", args.update_committed) / f"perf{tag}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)

    def stamped(table: pd.DataFrame) -> pd.DataFrame:  # the software and machine, in columns
        return table.assign(torch_version=torch.__version__, threads=torch.get_num_threads(), machine=name)

    if args.workloads:
        table = stamped(workload_table(args.quick))
        table.to_csv(out.with_name(f"workloads{tag}.csv"), index=False)
        print(workload_markdown(table))
        print(f"written: {out.with_name(f'workloads{tag}.csv')}")
        return 0
    rows = []
    for p, o, e, n, R in cases(args.quick, args.device):
        rows.append(measure_case(p, o, e, n, R, quick=args.quick, compile=args.compile, peers=peers, device=args.device,
                                 naive=not (n == 100 and R > 100_000), chunk_elements=args.chunk_elements))
        # Written after every row: a run stopped part-way keeps what it measured.
        stamped(pd.DataFrame(rows)).to_csv(out, index=False)
    df = stamped(pd.DataFrame(rows))
    if not args.no_memory:
        mem = peak_memory_mb(1_000_000, 100)
        print(f"n_replicates=1e6, n_samples=100: peak resident memory {mem['peak_mb']:.0f} MB "
              f"(after importing torch {mem['import_mb']:.0f} MB), {mem['seconds']:.1f} s")
        df["peak_rss_mb_1e6x100"] = mem["peak_mb"]
        df["import_rss_mb"] = mem["import_mb"]
    if args.device == "cpu":  # the input of the README's bound for a GPU
        for mode in (False, True) if args.compile else (False,):
            h = Harness(make_problem("gaussian_quadratic"), make_estimator("score_function"), n_samples=1, compile=mode)
            b = bytes_per_estimate(h, h.chunk)
            df[f"bytes_per_estimate_{'compiled' if mode else 'eager'}"] = b
            print(f"score_function, n_samples=1, {'compiled' if mode else 'eager'}: {b:.0f} bytes allocated per estimate")
    df.to_csv(out, index=False)
    print(markdown_table(df))
    if args.chunk_sweep:
        sweep = stamped(chunk_sweep(args.device, peers))
        sweep.to_csv(out.with_name(f"chunks{tag}.csv"), index=False)
        if args.device.startswith("cuda"):
            memory = peak_gpu_memory(args.device)
            memory.to_csv(out.with_name(f"chunks{tag}_memory.csv"), index=False)
            print(memory.to_string(index=False))
    if not args.no_trainer:
        trainer = trainer_table(args.quick, device=args.device)
        trainer.to_csv(out.with_name(f"trainer{tag}.csv"), index=False)
        print()
        print(trainer_markdown(trainer))
    print(f"written: {out}")
    return 0
