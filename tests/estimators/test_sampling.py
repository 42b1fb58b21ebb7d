"""The job's random stream: two generators, halves of large draws, the same values on any thread."""

import pytest
import torch

from estimators.sampling import SPLIT_MIN_ELEMENTS, Sampler, second_seed


def _pair(seed: int):
    return torch.Generator().manual_seed(seed), torch.Generator().manual_seed(second_seed(seed))


@pytest.mark.parametrize("kind, draw", [("normal", torch.randn), ("uniform", torch.rand)])
@pytest.mark.parametrize("shape", [(SPLIT_MIN_ELEMENTS,), (3, 7, 4001), (2 * SPLIT_MIN_ELEMENTS + 1, 1)])
def test_a_large_draw_is_the_first_generators_half_then_the_seconds(kind, draw, shape):
    sampler = Sampler.seeded(11, "cpu")
    like = torch.zeros(())
    first, second = _pair(11)
    for _ in range(2):  # and the next draw continues both streams
        got = getattr(sampler, kind)(shape, like)
        n = got.numel()
        want = torch.cat([draw((n + 1) // 2, generator=first), draw(n // 2, generator=second)])
        if kind == "uniform":
            want = want.clamp_min(torch.finfo(want.dtype).tiny)
        assert torch.equal(got.reshape(-1), want)


def test_a_small_draw_comes_from_the_first_generator_alone():
    sampler = Sampler.seeded(5, "cpu")
    first, second = _pair(5)
    like = torch.zeros((), dtype=torch.float64)
    got = sampler.normal((SPLIT_MIN_ELEMENTS - 1,), like)
    assert torch.equal(got, torch.randn(SPLIT_MIN_ELEMENTS - 1, generator=first, dtype=torch.float64))
    # the second generator was not touched: a large draw's second half starts its stream
    big = sampler.normal((2 * SPLIT_MIN_ELEMENTS,), like)
    assert torch.equal(big[SPLIT_MIN_ELEMENTS:], torch.randn(SPLIT_MIN_ELEMENTS, generator=second, dtype=torch.float64))


def test_the_values_do_not_depend_on_the_helper_thread(monkeypatch):
    from estimators import sampling

    threaded = Sampler.seeded(3, "cpu").normal((4, 50_000), torch.zeros(()))

    class InThisThread:  # runs the "second half" at once, in the caller's thread
        def submit(self, fn, *args, **kwargs):
            fn(*args, **kwargs)
            return self

        def result(self):
            return None

    monkeypatch.setattr(sampling, "_helper", lambda: InThisThread())
    assert torch.equal(threaded, Sampler.seeded(3, "cpu").normal((4, 50_000), torch.zeros(())))


def test_the_helper_thread_keeps_no_reference_to_a_draw(monkeypatch):
    """The caller's tensor is freed in the caller's thread when the caller lets go of it: a helper
    still holding a view after the draw (here: a worker that keeps its job for a while after
    reporting it done, as ``ThreadPoolExecutor``'s may) would free it in its own thread, and
    blocks freed there went back to the system, so each draw paid page faults."""
    import threading
    from concurrent.futures import Future

    from torch.multiprocessing.reductions import StorageWeakRef

    from estimators import sampling

    let_go = threading.Event()

    class SlowToLetGo:
        def submit(self, fn, *args, **kwargs):
            done = Future()

            def work():
                fn(*args, **kwargs)
                done.set_result(None)
                let_go.wait(5)  # the job's arguments are still referenced here

            threading.Thread(target=work, daemon=True).start()
            return done

    monkeypatch.setattr(sampling, "_helper", lambda: SlowToLetGo())
    out = Sampler.seeded(0, "cpu").normal((2 * SPLIT_MIN_ELEMENTS,), torch.zeros(()))
    storage = StorageWeakRef(out.untyped_storage())
    del out
    try:
        assert storage.expired()
    finally:
        let_go.set()


def test_second_seeds_differ_from_their_seed_in_the_bits_the_cpu_generator_keeps():
    seeds = list(range(5000)) + [2**31 - 1, 2**32 - 1, 2**40 + 7]
    assert all(second_seed(s) != s % 2**32 for s in seeds)
    assert len({second_seed(s) for s in range(5000)}) == 5000


def test_a_given_generator_is_one_stream():
    """The library call ``estimator(dist, cost, generator=g)`` draws from ``g`` alone."""
    g, h = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    got = Sampler(g).normal((3 * SPLIT_MIN_ELEMENTS,), torch.zeros(()))
    assert torch.equal(got, torch.randn(3 * SPLIT_MIN_ELEMENTS, generator=h))


def test_a_forked_child_draws_with_its_own_helper_thread():
    import multiprocessing

    Sampler.seeded(1, "cpu").normal((2 * SPLIT_MIN_ELEMENTS,), torch.zeros(()))  # the parent's helper exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(_draw_bytes, (2,)).get(timeout=60)  # hangs if the child waits on no thread
    assert got == _draw_bytes(2)


def _draw_bytes(seed):
    return Sampler.seeded(seed, "cpu").normal((2 * SPLIT_MIN_ELEMENTS,), torch.zeros(())).numpy().tobytes()
