"""Execution engines: where the per-block work of a state runs (SPEC sections 2 and 9).

A state splits its work into canonical blocks: small global reductions run in the calling
process, and each block is one task of a module-level block function. Every draw is keyed
by global ids and every group by its global block, so a block's result does not depend on
where or when it ran. ``LocalEngine`` runs the tasks on a pool of threads (the kernels
release the GIL), ``DaskEngine`` on a ``distributed`` cluster, where a task's memory is
bounded by the block size. Both publish identical bytes.
"""
import dataclasses
import functools
import threading
import typing
import uuid
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from .errors import ParameterError

ENGINES = ("local", "dask")


class LocalEngine:
    """Run block tasks in this process, on as many threads as Numba may use
    (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``, ``seg6a run --threads``)."""

    name = "local"

    def map(self, function, *per_block, gather=True, **shared):
        """``[function(*args_of_block, **shared)]`` for each block's arguments, in order.

        With ``gather=False`` the results stay where they were computed, as handles: later
        maps take them as per-block arguments (a map of ``operator.attrgetter`` reads a
        small field of each), and ``gather`` brings them here. In this process a result is
        its own handle.
        """
        return concurrently(*[functools.partial(function, *args, **shared)
                              for args in zip(*per_block)])

    def pick(self, handles, index):
        """Handles of ``result[index]`` for the results behind ``handles``, left where they
        are (a map of ``operator.itemgetter(index)`` that costs no tasks)."""
        return [handle[index] for handle in handles]

    def gather(self, handles):
        """The results behind ``handles``."""
        return list(handles)

    def reduce(self, function, handles, gather=True):
        """``function`` (of a list, giving one of its kind) over the results behind
        ``handles``, in the tree of ``reduction_groups``: the same order on every engine.
        With ``gather=False``, the handle of the result."""
        results = list(handles)
        while len(results) > 1:
            results = [function(results[a:z]) for a, z in reduction_groups(len(results))]
        return results[0]

    def close(self):
        pass


class DaskEngine:
    """Run block tasks on a ``distributed`` cluster.

    Parameters
    ----------
    client : distributed.Client, optional
        The cluster to use. Without one, a ``LocalCluster`` of ``n_workers`` single-threaded
        worker processes with ``memory_limit`` each is started, and closed by ``close``.
    n_workers : int, default 2
    memory_limit : str, default "4GiB"
    """

    name = "dask"

    def __init__(self, client=None, n_workers=2, memory_limit="4GiB"):
        self._owned = client is None
        if client is None:
            from distributed import Client

            client = Client(local_cluster(n_workers, memory_limit))
        self.client = client

    def map(self, function, *per_block, gather=True, **shared):
        """``[function(*args_of_block, **shared)]`` for each block's arguments, in order;
        with ``gather=False``, the futures of the results, which stay on the workers."""
        # Inputs go in the task specs, not scattered: the scheduler keeps them, so the task
        # of a worker that dies is rerun elsewhere (scattered data would die with it), and
        # so are the tasks behind the futures given as inputs. The shared ones are bound
        # first: client.map keeps some keyword names (key, ...) for itself. The scheduler
        # places each task near its inputs (pinning block b to worker b mod n was slower).
        # A picked field travels as (future, path) and is taken out on the worker.
        futures = self.client.map(functools.partial(_picking, function, **shared),
                                  *[[_in_spec(h) for h in args] for args in per_block],
                                  key=_task_name(function), pure=False)
        return self.client.gather(futures) if gather else futures

    def pick(self, handles, index):
        """Handles of ``result[index]`` for the results behind ``handles``, left on the
        workers: no task runs, the tasks that take them take the field out."""
        return [Piece(h.future, h.path + (index,)) if isinstance(h, Piece)
                else Piece(h, (index,)) for h in handles]

    def gather(self, handles):
        """The results behind ``handles`` (a picked field is taken out on its worker)."""
        handles = list(handles)
        if any(isinstance(h, Piece) for h in handles):
            return self.map(_identity, handles)  # the fields, not the results they are in
        return self.client.gather(handles)

    def reduce(self, function, handles, gather=True):
        """``function`` (of a list, giving one of its kind) over the results behind
        ``handles``, in the tree of ``reduction_groups``, on the workers: only the last
        result comes here, whatever the number of blocks (with ``gather=False``, its
        future stays there)."""
        futures = list(handles)
        if len(futures) == 1:
            return self.gather(futures)[0] if gather else futures[0]
        futures = [_in_spec(h) for h in futures]
        while len(futures) > 1:
            futures = [self.client.submit(_of_list, function, *futures[a:z], pure=False,
                                          key=f"{_task_name(function)}-{uuid.uuid4().hex}")
                       for a, z in reduction_groups(len(futures))]
        return self.client.gather(futures[0]) if gather else futures[0]

    def close(self):
        """Stop the cluster started here (a given client is the caller's); idempotent."""
        if self._owned:
            self._owned = False
            cluster = self.client.cluster
            self.client.close()
            cluster.close()


LOCAL = LocalEngine()

REDUCTION_FAN_IN = 8


def reduction_groups(n):
    """``(start, stop)`` of the consecutive groups of at most ``REDUCTION_FAN_IN`` that one
    level of a reduction tree over ``n`` results combines, in order.

    >>> reduction_groups(19)
    [(0, 8), (8, 16), (16, 19)]
    """
    return [(a, min(a + REDUCTION_FAN_IN, n)) for a in range(0, n, REDUCTION_FAN_IN)]


def _task_name(function):
    """What the dashboard calls the tasks of ``function`` (not the wrapper that runs it)."""
    from dask.utils import funcname

    return funcname(function)


def _of_list(function, *results):
    return function([_picked(result) for result in results])


class Piece(typing.NamedTuple):
    """A field of a block's result on a Dask worker: ``result[path[0]][path[1]]...``."""

    future: object
    path: tuple


def _in_spec(value):
    """A task's argument with each picked field in it (also in a dict or list) as the plain
    tuple ``(Piece, future, path)``, in which Dask finds the future and gives the task its
    result."""
    if isinstance(value, Piece):
        return (Piece, *value)
    if isinstance(value, dict):
        return {key: _in_spec(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_in_spec(v) for v in value]
    return value


def _picked(value):
    """The argument ``_in_spec`` made, with each picked field taken out of its result."""
    if type(value) is tuple and len(value) == 3 and value[0] is Piece:
        value, path = value[1], value[2]
        for index in path:
            value = value[index]
        return value
    if isinstance(value, dict):
        return {key: _picked(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_picked(v) for v in value]
    return value


def _picking(function, *args, **shared):
    return function(*map(_picked, args), **shared)


def _identity(value):
    return value


class BlockResult:
    """Base of the dataclasses a block task returns, which an engine may hold between tasks.

    ``sys.getsizeof`` of one counts the arrays and tables it holds. Dask's memory manager
    sizes an object it has no rule for by ``sys.getsizeof``: without this it saw a block of
    devices as 56 bytes, could not spill it, and counted its arrays as unmanaged memory.
    """

    __slots__ = ()

    def __sizeof__(self):
        return object.__sizeof__(self) + held_bytes(vars(self))


def held_bytes(value):
    """The bytes of the arrays and tables in ``value``, through dataclasses, dicts, lists
    and tuples (a buffer two of them share is counted twice).

    >>> held_bytes({"a": np.zeros(3), "b": [np.zeros(2, np.int32), 7]})
    32
    """
    if isinstance(value, dict):
        return sum(held_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(held_bytes(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return held_bytes(vars(value))
    nbytes = getattr(value, "nbytes", 0)  # NumPy and Arrow arrays, Arrow tables
    return nbytes if isinstance(nbytes, int) else 0


# glibc's own ceiling for its sliding mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX).
MMAP_THRESHOLD = 32 * 2**20


def local_cluster(n_workers=2, memory_limit="4GiB"):
    """A ``distributed.LocalCluster`` of ``n_workers`` single-threaded worker processes,
    set up for block tasks.

    Dask starts workers with ``MALLOC_TRIM_THRESHOLD_`` set, which also freezes glibc's
    mmap threshold at 128 KiB: every array above that is then a fresh ``mmap`` that
    page-faults on first touch, and block tasks ran ~1.4x slower than in this process.
    The workers here get the 32 MiB threshold glibc would reach by itself, and keep Dask's
    trimming. (A variable already set in this process's environment wins, as in Dask.)
    """
    try:
        import dask
        from distributed import LocalCluster
    except ImportError:
        raise ParameterError("engine 'dask' needs dask.distributed: "
                             "pip install 'seg6a[dask]'") from None
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ"),
               "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                            memory_limit=memory_limit, dashboard_address=":0")


def concurrently(*tasks):
    """``[task() for task in tasks]``, run on as many threads as Numba may use.

    For independent pieces of work in this process that release the GIL (kernels, NumPy
    and Arrow on large arrays); results come back in the tasks' order. The threads live as
    long as the process: each keeps its malloc arena, whose freed blocks it reuses (fresh
    threads per call landed on other arenas, and a four-seed certification at ``full``
    peaked at 2.3 or 2.9 GiB by chance). A task that calls ``concurrently`` again runs
    those tasks itself: the threads are already busy.

    >>> concurrently(lambda: 1, lambda: 2)
    [1, 2]
    """
    threads = min(numba.get_num_threads(), len(tasks))
    if threads <= 1 or getattr(_in_pool, "flag", False):
        return [task() for task in tasks]
    return list(_pool(numba.get_num_threads()).map(_run_in_pool, tasks))


_in_pool = threading.local()
_pools = {}  # thread count -> the executor of that many threads
_pools_lock = threading.Lock()


def _run_in_pool(task):
    _in_pool.flag = True
    return task()


def _pool(threads):
    with _pools_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="seg6a")
        return _pools[threads]


def make_engine(engine, client=None):
    """The engine named ``"local"`` or ``"dask"`` (on ``client`` if given)."""
    if engine == "local":
        if client is not None:
            raise ParameterError("a distributed client needs engine='dask'")
        return LocalEngine()
    if engine == "dask":
        return DaskEngine(client)
    raise ParameterError(f"unknown engine {engine!r}; available: {', '.join(ENGINES)}")


def spans(offsets):
    """``(starts, stops)`` of each canonical block's entities, from their ``offsets``.

    >>> spans([0, 10, 20, 25])
    ([0, 10, 20], [10, 20, 25])
    """
    return [int(o) for o in offsets[:-1]], [int(o) for o in offsets[1:]]


def join(parts):
    """The blocks' arrays end to end (the one array itself when there is one block).

    >>> join([np.arange(2), np.arange(3)]).tolist()
    [0, 1, 0, 1, 2]
    """
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
