"""``instructor_ray.resources``: an ingest's shape checked against the cluster's nodes before the job
starts (pure functions over node lists: no Ray). The two shapes of issue 23's finding 1 hung a real
2-node cluster of 1 CPU each for 16 minutes without a word; here they are refused in one line, with
the numbers and a fix, or made to fit by the defaults."""

from __future__ import annotations

import pytest

from instructor_core.errors import InputError
from instructor_ray.resources import (
    Node,
    Shape,
    check_shape,
    default_concurrency,
    default_task_cpus,
    fits,
    nodes_of,
    place_actors,
    resolve_shape,
)

TWO_SMALL = [Node(1.0, name="127.0.0.2"), Node(1.0, name="127.0.0.3")]


def test_nodes_of_keeps_alive_nodes_and_their_cpus_and_gpus():
    ray_nodes = [
        {"Alive": True, "NodeManagerAddress": "10.0.0.1", "Resources": {"CPU": 8.0, "GPU": 1.0, "memory": 1e9}},
        {"Alive": False, "NodeManagerAddress": "10.0.0.2", "Resources": {"CPU": 8.0}},
        {"Alive": True, "NodeManagerAddress": "10.0.0.3", "Resources": {"CPU": 4.0}},
    ]
    assert nodes_of(ray_nodes) == [Node(8.0, 1.0, "10.0.0.1"), Node(4.0, 0.0, "10.0.0.3")]


def test_two_whole_cpu_actors_on_two_one_cpu_nodes_are_refused_with_the_numbers_and_a_fix():
    with pytest.raises(InputError) as info:
        resolve_shape(TWO_SMALL, concurrency=2, num_cpus=1.0, num_gpus=None, task_cpus=None)
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        "--concurrency 2 x --num-cpus 1 leaves no CPU for reading and writing on a 2-node cluster"
        " of 1 CPU each: use --num-cpus 0.5 --task-cpus 0.25, or --concurrency 1"
    )


def test_half_cpu_actors_with_a_whole_cpu_task_are_refused_and_fit_with_the_default_task_cpus():
    # finding 1's second shape: two 0.5-CPU actors, spread one per node, leave no room for a task of Ray's
    # default 1 CPU (`ray status` showed a pending {'CPU': 1.0})
    match = (
        r"leaves less than --task-cpus 1 for reading and writing on a 2-node cluster of 1 CPU each: "
        r"use --task-cpus 0.5, or --concurrency 1$"
    )
    with pytest.raises(InputError, match=match):
        check_shape(TWO_SMALL, Shape(2, 0.5, 0.0, 1.0))
    # without --task-cpus the default fits beside the actors: the largest of 1, 0.5, 0.25, 0.1 that does
    assert resolve_shape(TWO_SMALL, concurrency=2, num_cpus=0.5, num_gpus=None, task_cpus=None) == Shape(
        2, 0.5, 0.0, 0.5
    )


def test_actors_are_spread_over_the_nodes_as_ray_data_spreads_an_actor_pool():
    assert place_actors(TWO_SMALL, Shape(2, 0.5, 0.0, 0.25)) == [(0.5, 0.0), (0.5, 0.0)]
    assert place_actors(TWO_SMALL, Shape(3, 0.5, 0.0, 0.25)) == [(0.0, 0.0), (0.5, 0.0)]
    gpu = [Node(8.0, 0.0), Node(8.0, 2.0), Node(8.0, 1.0)]
    assert place_actors(gpu, Shape(2, 1.0, 1.0, 0.25)) == [(8.0, 0.0), (7.0, 1.0), (7.0, 0.0)]


def test_an_actor_cannot_span_nodes():
    # 1.5 CPUs of 2 in total, but no node has 1.5
    shape = Shape(1, 1.5, 0.0, 0.25)
    assert place_actors(TWO_SMALL, shape) is None
    with pytest.raises(InputError, match=r"does not fit on a 2-node cluster of 1 CPU each \(an actor cannot span"):
        check_shape(TWO_SMALL, shape)


def test_default_concurrency_leaves_room_for_reading_and_writing():
    # one whole-CPU actor on one node, the other node free for the tasks
    assert default_concurrency(TWO_SMALL, None, None) == 1
    assert resolve_shape(TWO_SMALL, concurrency=None, num_cpus=None, num_gpus=None, task_cpus=None) == Shape(
        1, 1.0, 0.0, 1.0
    )
    # 16 CPUs: 15 actors of 1 CPU, one CPU for the tasks (what the old default gave a single node)
    assert default_concurrency([Node(16.0)], 1.0, None) == 15
    assert default_task_cpus([Node(16.0)], 15, 1.0, None) == 1.0
    # half-CPU actors on two 1-CPU nodes: three actors, the fourth half CPU for the tasks
    assert default_concurrency(TWO_SMALL, 0.5, None, 0.25) == 3


def test_default_concurrency_with_gpus_is_one_actor_per_gpu_share_on_the_gpu_nodes():
    nodes = [Node(4.0, name="head"), Node(8.0, 1.0, "gpu-a"), Node(8.0, 2.0, "gpu-b")]
    assert default_concurrency(nodes, None, 1.0) == 3
    assert default_concurrency(nodes, None, 0.5) == 6
    shape = resolve_shape(nodes, concurrency=None, num_cpus=None, num_gpus=1.0, task_cpus=None)
    assert shape == Shape(3, 0.0, 1.0, 1.0)


def test_gpus_the_cluster_does_not_have_are_refused():
    with pytest.raises(InputError, match=r"asks for GPUs and a 2-node cluster of 1 CPU each has 0: drop --num-gpus"):
        resolve_shape(TWO_SMALL, concurrency=None, num_cpus=None, num_gpus=1.0, task_cpus=None)


def test_a_given_task_cpus_is_kept_and_checked():
    assert resolve_shape(TWO_SMALL, concurrency=2, num_cpus=0.5, num_gpus=None, task_cpus=0.25).task_cpus == 0.25
    with pytest.raises(InputError, match=r"leaves less than --task-cpus 1 "):
        resolve_shape(TWO_SMALL, concurrency=2, num_cpus=0.5, num_gpus=None, task_cpus=1.0)


def test_the_fix_a_refusal_names_fits():
    shape = Shape(2, 1.0, 0.0, 0.1)
    assert not fits(TWO_SMALL, shape)
    assert fits(TWO_SMALL, Shape(2, 0.5, 0.0, 0.25))
    assert fits(TWO_SMALL, Shape(1, 1.0, 0.0, 0.1))


def test_uneven_nodes_are_listed():
    nodes = [Node(1.0), Node(2.0, 1.0)]
    with pytest.raises(InputError, match=r"a 2-node cluster \(1 CPU, 2 CPU\+1 GPU\)"):
        check_shape(nodes, Shape(3, 1.0, 0.0, 0.25))


def test_the_default_concurrency_leaves_room_for_the_smallest_task_not_the_largest():
    """Without --task-cpus, the actors are counted beside the smallest default task (0.1 CPU), and the
    task CPUs are then the largest choice that still fits: two 1-CPU nodes hold three half-CPU actors
    and 0.5-CPU tasks (counted beside a 1-CPU task, only one actor would run)."""
    assert default_concurrency(TWO_SMALL, 0.5, None) == 3
    assert resolve_shape(TWO_SMALL, concurrency=None, num_cpus=0.5, num_gpus=None, task_cpus=None) == Shape(
        3, 0.5, 0.0, 0.5
    )
    assert default_concurrency([Node(4.0)], 0.5, None) == 7  # 3.5 CPUs of actors, 0.5 left for the tasks


def test_where_no_task_fits_the_default_is_the_smallest_choice():
    """Two whole-CPU actors on two 1-CPU nodes leave nothing: the default asks the least (0.1), so the
    refusal is about the actors, not about a task size the user never chose."""
    assert default_task_cpus(TWO_SMALL, 2, 1.0, None) == 0.1
    assert default_task_cpus([Node(2.0)], 2, 0.9, None) == 0.1  # 0.2 left: only 0.1 fits
