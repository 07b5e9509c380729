"""Does an ingest's shape fit the cluster? Checked before the job starts, so an impossible shape is
one line within seconds instead of a job that waits forever for a CPU.

An ingest holds ``concurrency`` embedding actors (``num_cpus`` and ``num_gpus`` each) for its whole
run, and needs CPUs for its read, check and write tasks (``task_cpus`` each) beside them. An actor
cannot span nodes, so the check is per node: the actors are spread over the nodes (as Ray Data spreads an actor
pool), and the CPUs they leave must hold at least one task somewhere. Everything here is a pure function over a
list of :class:`Node` (from ``ray.nodes()`` by :func:`nodes_of`): no Ray needed to test it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from instructor_core.errors import InputError

__all__ = [
    "TASK_CPU_CHOICES",
    "Node",
    "Shape",
    "check_shape",
    "default_concurrency",
    "default_task_cpus",
    "nodes_of",
    "place_actors",
    "resolve_shape",
]

#: Ray counts resources in units of 1/10,000: sums within this are equal.
_EPS = 1e-4
#: The ``--task-cpus`` values the default picks from, largest first (1 is Ray's own default).
TASK_CPU_CHOICES = (1.0, 0.5, 0.25, 0.1)
#: The ``--num-cpus`` values a refusal may suggest, beside whole CPUs.
_ACTOR_CPU_CHOICES = (0.5, 0.25)


@dataclass(frozen=True)
class Node:
    """An alive node's total resources.

    Attributes:
        cpus: CPUs the node offers to Ray.
        gpus: GPUs the node offers to Ray.
        name: Its address (named in messages).
    """

    cpus: float
    gpus: float = 0.0
    name: str = ""


@dataclass(frozen=True)
class Shape:
    """What an ingest asks of the cluster.

    Attributes:
        concurrency: Embedding actors.
        num_cpus: CPUs per actor.
        num_gpus: GPUs per actor.
        task_cpus: CPUs each read, check and write task reserves.
    """

    concurrency: int
    num_cpus: float
    num_gpus: float
    task_cpus: float


def nodes_of(ray_nodes: Iterable[Mapping[str, Any]]) -> list[Node]:
    """The alive nodes of ``ray.nodes()`` (dicts with ``Alive``, ``Resources``, ``NodeManagerAddress``)."""
    found = []
    for entry in ray_nodes:
        if not entry.get("Alive", True):
            continue
        resources = entry.get("Resources") or {}
        found.append(
            Node(
                cpus=float(resources.get("CPU", 0.0)),
                gpus=float(resources.get("GPU", 0.0)),
                name=str(entry.get("NodeManagerAddress", "")),
            )
        )
    return found


def actor_cpus(num_cpus: float | None, num_gpus: float | None) -> float:
    """CPUs an embedding actor reserves: ``num_cpus``, else 1 (0 with GPUs), as ``embed_dataset`` does."""
    if num_cpus is not None:
        return float(num_cpus)
    return 0.0 if num_gpus else 1.0


def place_actors(nodes: Sequence[Node], shape: Shape) -> list[tuple[float, float]] | None:
    """Place the actors spread over the nodes, as Ray Data places an actor pool (its ``SPREAD``
    strategy): each on the node with the most left (GPUs first when it asks for GPUs, then CPUs).
    The (CPUs, GPUs) each node has left, or None if an actor does not fit on any node."""
    left = [(node.cpus, node.gpus) for node in nodes]
    for _ in range(shape.concurrency):
        able = [
            i for i, (cpus, gpus) in enumerate(left) if cpus + _EPS >= shape.num_cpus and gpus + _EPS >= shape.num_gpus
        ]
        if not able:
            return None
        i = max(able, key=lambda j: ((left[j][1] if shape.num_gpus else 0.0), left[j][0], -j))
        left[i] = (left[i][0] - shape.num_cpus, left[i][1] - shape.num_gpus)
    return left


def fits(nodes: Sequence[Node], shape: Shape) -> bool:
    """Whether the actors fit and leave at least one task's CPUs on some node."""
    left = place_actors(nodes, shape)
    return left is not None and any(cpus + _EPS >= shape.task_cpus for cpus, _ in left)


def default_concurrency(
    nodes: Sequence[Node], num_cpus: float | None, num_gpus: float | None, task_cpus: float | None = None
) -> int:
    """The most actors that fit beside one task (``task_cpus``, else the smallest default choice);
    at least 1 (a shape that cannot fit even one is refused by :func:`check_shape`)."""
    cpus, gpus = actor_cpus(num_cpus, num_gpus), float(num_gpus or 0.0)
    task = TASK_CPU_CHOICES[-1] if task_cpus is None else task_cpus
    per_node = []
    for node in nodes:
        by_cpu = int((node.cpus + _EPS) // cpus) if cpus > 0 else None
        by_gpu = int((node.gpus + _EPS) // gpus) if gpus > 0 else None
        bounds = [b for b in (by_cpu, by_gpu) if b is not None]
        per_node.append(min(bounds) if bounds else 0)
    best = 1
    for n in range(1, max(1, sum(per_node)) + 1):
        if fits(nodes, Shape(n, cpus, gpus, task)):
            best = n
    return best


def default_task_cpus(nodes: Sequence[Node], concurrency: int, num_cpus: float | None, num_gpus: float | None) -> float:
    """The largest of :data:`TASK_CPU_CHOICES` that fits beside the actors (the smallest if none does:
    :func:`check_shape` then says why)."""
    cpus, gpus = actor_cpus(num_cpus, num_gpus), float(num_gpus or 0.0)
    for task in TASK_CPU_CHOICES:
        if fits(nodes, Shape(concurrency, cpus, gpus, task)):
            return task
    return TASK_CPU_CHOICES[-1]


def _num(value: float) -> str:
    return f"{value:g}"


def _cluster(nodes: Sequence[Node]) -> str:
    n = len(nodes)
    if len({(node.cpus, node.gpus) for node in nodes}) == 1:
        each = f"{_num(nodes[0].cpus)} CPU" + (f" and {_num(nodes[0].gpus)} GPU" if nodes[0].gpus else "")
        return f"a {n}-node cluster of {each}" + (" each" if n > 1 else "")
    listed = ", ".join(f"{_num(node.cpus)} CPU" + (f"+{_num(node.gpus)} GPU" if node.gpus else "") for node in nodes)
    return f"a {n}-node cluster ({listed})"


def _fixes(nodes: Sequence[Node], shape: Shape, task_given: bool) -> list[str]:
    """Shapes close to ``shape`` that fit, as option strings: smaller tasks, else smaller actors; fewer actors."""
    fixes = []
    smaller_tasks = [t for t in TASK_CPU_CHOICES if t < shape.task_cpus - _EPS]
    task_fix = next((t for t in smaller_tasks if fits(nodes, replace(shape, task_cpus=t))), None)
    if task_fix is not None:
        fixes.append(f"--task-cpus {_num(task_fix)}")
    else:
        task = shape.task_cpus if task_given else 0.25
        whole = [float(c) for c in range(int(max(n.cpus for n in nodes)), 0, -1)]
        for cpus in [c for c in (*whole, *_ACTOR_CPU_CHOICES) if c < shape.num_cpus - _EPS]:
            if fits(nodes, replace(shape, num_cpus=cpus, task_cpus=task)):
                fixes.append(f"--num-cpus {_num(cpus)}" + ("" if task_given else f" --task-cpus {_num(task)}"))
                break
    for n in range(shape.concurrency - 1, 0, -1):
        if fits(nodes, replace(shape, concurrency=n)):
            fixes.append(f"--concurrency {n}")
            break
    return fixes


def check_shape(nodes: Sequence[Node], shape: Shape, *, task_given: bool = True) -> None:
    """Refuse a shape the cluster cannot run, in one line naming the numbers and a fix.

    Args:
        nodes: The cluster's alive nodes.
        shape: The actors and task CPUs asked for.
        task_given: Whether ``--task-cpus`` was given (else a fix may suggest it).

    Raises:
        InputError: The actors do not fit on the nodes, or leave no CPU for a read/write task.
    """
    if fits(nodes, shape):
        return
    if not nodes:
        raise InputError("the Ray cluster has no alive node")
    asked = f"--concurrency {shape.concurrency} x --num-cpus {_num(shape.num_cpus)}"
    if shape.num_gpus:
        asked += f" --num-gpus {_num(shape.num_gpus)}"
    where = _cluster(nodes)
    total_gpus = sum(n.gpus for n in nodes)
    if shape.num_gpus and total_gpus + _EPS < shape.num_gpus:
        raise InputError(f"{asked} asks for GPUs and {where} has {_num(total_gpus)}: drop --num-gpus")
    if place_actors(nodes, shape) is None:
        problem = f"{asked} does not fit on {where} (an actor cannot span nodes)"
    elif task_given:
        problem = f"{asked} leaves less than --task-cpus {_num(shape.task_cpus)} for reading and writing on {where}"
    else:
        problem = f"{asked} leaves no CPU for reading and writing on {where}"
    fixes = _fixes(nodes, shape, task_given)
    hint = f": use {', or '.join(fixes)}" if fixes else ": ask for fewer or smaller actors"
    raise InputError(problem + hint)


def resolve_shape(
    nodes: Sequence[Node],
    *,
    concurrency: int | None,
    num_cpus: float | None,
    num_gpus: float | None,
    task_cpus: float | None,
) -> Shape:
    """The shape to run: the defaults filled in so reading and writing fit beside the actors, then checked.

    Raises:
        InputError: The shape (given or defaulted) does not fit; the message names a fix.
    """
    cpus, gpus = actor_cpus(num_cpus, num_gpus), float(num_gpus or 0.0)
    if concurrency is None:
        concurrency = default_concurrency(nodes, num_cpus, num_gpus, task_cpus)
    task = task_cpus if task_cpus is not None else default_task_cpus(nodes, concurrency, num_cpus, num_gpus)
    shape = Shape(concurrency, cpus, gpus, task)
    check_shape(nodes, shape, task_given=task_cpus is not None)
    return shape
