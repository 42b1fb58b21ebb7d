"""gradient-estimator-bench: the variance, bias and cost of Monte Carlo gradient estimators against
exact gradients.

The library::

    import bench
    df = bench.measure("gaussian_quadratic", "score_function", n_samples=10, n_replicates=100_000)
    df = bench.compare(["gaussian_quadratic", "policy_mlp"], ["score_function", "reparameterization"],
                       n_samples=[1, 10], n_replicates=20_000)
    print(bench.summary(df))  # the table the command line prints
    estimator = bench.make_estimator("score_function_baseline", baseline="ema")
    loss = estimator(torch.distributions.Normal(mu, std), cost_fn, n_samples=10, state=state)

The commands: ``python -m bench.run`` (jobs and sweeps), ``bench.train`` (training loops),
``bench.report`` (figures), ``bench.calibrate`` (the statistics' calibration), ``bench.perf``
(speed), ``bench.readme`` (the generated tables), ``bench.regression`` and ``bench.reference``.
"""

from estimators import ESTIMATORS, ConfigError, Cost, Estimator, NotApplicable, Sampler, make_estimator, options

from .api import compare, estimates, measure
from .problems import PROBLEMS, Problem, make_problem
from .results import summary_table as summary

__all__ = [
    "ESTIMATORS",
    "PROBLEMS",
    "ConfigError",
    "Cost",
    "Estimator",
    "NotApplicable",
    "Problem",
    "Sampler",
    "compare",
    "estimates",
    "make_estimator",
    "make_problem",
    "measure",
    "options",
    "summary",
]
