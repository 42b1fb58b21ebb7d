"""Speed benchmark: ``python -m bench.perf [--quick] [--compile] [--peers] [--device cuda]``.

Measures, side by side, the rate (gradient estimates per second) of

* ``naive``: a Python loop of ``backward()`` calls, one estimate per iteration, through
  ``torch.distributions`` (the textbook REINFORCE step);
* ``harness``: :meth:`bench.harness.Harness.run` (batched replicates, chunked, statistics included;
  the one-time set-up of exact gradient and Jacobian is not timed), eager;
* ``compiled`` (``--compile``): the same with ``compile=true`` (the whole chunk step compiled; its
  compilation is done before timing and reported);
* ``closed_form``: the same estimator written with plain tensor ops and no autograd, with the same
  chunking and reductions (the limit on this machine; Gaussian quadratic only);
* ``peer`` (``--peers``, with the optional extra ``.[peers]``: jax and optax==0.2.6):
  ``optax.monte_carlo``'s score-function and pathwise jacobians under ``jax.jit``, on the same
  problem, sizes and chunks, with the same reductions (sums and sums of squares); jit compile time
  excluded and reported;

each a median over rounds in which the methods are timed in turn with
``torch.utils.benchmark.Timer`` (the machine's speed drifts; alternating keeps the ratios fair),
with the spread over rounds. Also: the batched trainer against the REINFORCE question's own loop
(run-steps per second), and the peak resident memory of a large harness run. Writes
``results/perf/perf.csv`` and ``trainer.csv`` and prints the README's tables. With ``--device cuda``
the sizes are a GPU's (:func:`gpu_cases`), the files ``perf_cuda.csv`` (``--out``) and
``trainer_cuda.csv``; ``--chunk-sweep`` adds the rates against ``chunk_elements`` (``chunks*.csv``)
and, on a GPU, the peak memory of heavy pairs at the default chunk. ``.ci/gpu-check`` runs it all
on a CUDA machine, with the CUDA tests and benchmarks.

``--workloads`` times the new workloads instead (:mod:`bench.perf.workloads`: the digits VAE's
enumeration against the matrix-multiply rate, every discrete estimator on it and the sequence
policy's aggregations against their naive loops): ``workloads.csv``.

Modules: ``methods`` (the timed methods), ``rows`` (the cases and the sweep), ``memory``,
``trainer``, ``workloads``, ``tables`` (the README's), ``cli`` (``main``).
"""


from .cli import main
from .memory import HEAVY_PAIRS, bytes_per_estimate, peak_gpu_memory, peak_memory_mb
from .methods import (
    PEERS_HINT,
    Peer,
    closed_form_rate,
    harness_rate,
    naive_rate,
    peers_available,
)
from .rows import cases, chunk_sweep, gpu_cases, measure_case
from .tables import markdown_table
from .trainer import question_loop_rate, trainer_markdown, trainer_rate, trainer_table

__all__ = ["HEAVY_PAIRS", "PEERS_HINT", "Peer", "bytes_per_estimate", "cases", "chunk_sweep", "closed_form_rate",
           "gpu_cases", "harness_rate", "main", "markdown_table", "measure_case", "naive_rate", "peak_gpu_memory",
           "peak_memory_mb", "peers_available", "question_loop_rate", "trainer_markdown", "trainer_rate",
           "trainer_table"]

