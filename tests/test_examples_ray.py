"""examples/ray/: the KubeRay RayJob and the `ray up` cluster run the CLI as shipped. Each file is
parsed, its kind and fields checked, and each `instructor ...` command it runs is parsed by the
CLI's own argparse parser: a renamed or removed option fails here, not on someone's cluster."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from instructor_core.cli import build_parser
from tests.conftest import REPO

EXAMPLES = REPO / "examples" / "ray"


def _parse_instructor(command: str):
    argv = shlex.split(command)
    assert argv[0] == "instructor", command
    return build_parser().parse_args(argv[1:])  # argparse exits (SystemExit 2) on an unknown option


def _check_ingest(args) -> None:
    assert args.command == "ingest"
    assert args.engine == "ray"
    assert args.ray_address == "auto"
    assert args.id_field  # shards read in parallel need an id
    assert args.num_gpus == 1 and args.task_cpus == 1  # the GPU workers embed, the CPU workers read and write
    assert args.stall_limit > args.stall_warn > 0


def test_rayjob_manifest_has_a_head_a_cpu_and_a_gpu_group_and_runs_the_shipped_cli():
    job = yaml.safe_load((EXAMPLES / "rayjob.yaml").read_text(encoding="utf-8"))
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    assert "instructor[ray,qdrant]" in spec["runtimeEnvYAML"]
    assert yaml.safe_load(spec["runtimeEnvYAML"])["pip"] == ["instructor[ray,qdrant]"]
    cluster = spec["rayClusterSpec"]
    assert cluster["headGroupSpec"]["template"]["spec"]["containers"]
    groups = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}

    def limits(group: dict) -> dict:
        return group["template"]["spec"]["containers"][0]["resources"]["limits"]

    assert "nvidia.com/gpu" not in limits(groups["cpu"])
    assert limits(groups["gpu"])["nvidia.com/gpu"] == "1"
    args = _parse_instructor(spec["entrypoint"])
    _check_ingest(args)
    assert args.concurrency <= groups["gpu"]["minReplicas"]  # the shape is checked against the nodes alive at start
    assert args.corpus.startswith("/data/")  # the volume every pod mounts
    for group in [cluster["headGroupSpec"], *groups.values()]:
        assert {"name": "corpus", "mountPath": "/data"} in group["template"]["spec"]["containers"][0]["volumeMounts"]


def test_ray_up_cluster_yaml_has_cpu_and_gpu_workers_and_installs_the_package():
    config = yaml.safe_load((EXAMPLES / "cluster.yaml").read_text(encoding="utf-8"))
    assert config["cluster_name"] and config["provider"]["type"] == "aws"
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    assert {"cpu_worker", "gpu_worker"} <= set(types)
    assert types["gpu_worker"]["node_config"]["InstanceType"].startswith("g")
    assert any('"instructor[ray,qdrant]"' in c and c.startswith("pip install") for c in config["setup_commands"])
    script = (EXAMPLES / "ingest.sh").read_text(encoding="utf-8")
    assert re.search(r'^ray exec "\$\(dirname "\$0"\)/cluster\.yaml" ', script, re.M)
    commands = re.findall(r'"(instructor [^"]+)"', script)
    assert len(commands) == 1
    args = _parse_instructor(commands[0])
    _check_ingest(args)
    assert args.concurrency <= types["gpu_worker"]["min_workers"]
    assert args.corpus.rstrip("/") in config["file_mounts"]  # copied to every node


def test_ray_up_cluster_yaml_passes_rays_own_schema():
    pytest.importorskip("ray")
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((EXAMPLES / "cluster.yaml").read_text(encoding="utf-8"))
    validate_config(prepare_config(config))  # raises on an unknown or misspelled field
