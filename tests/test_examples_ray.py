"""examples/ray/: the KubeRay RayJob and the `ray up` cluster run the CLI as shipped. Each file is
parsed, its kind and fields checked, and each `instructor ...` command it runs is parsed by the
CLI's own argparse parser: a renamed or removed option fails here, not on someone's cluster.

What the examples install is checked by running their install steps: this project's wheel is built
(``pip wheel --no-deps``), placed where the example copies ``dist/`` to, and the example's own ``pip
install`` command runs with ``pip`` standing for ``pip install --dry-run --no-index --report``: the
report must name that wheel, this project's version and the extras, nothing from an index."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from instructor_core.cli import build_parser
from instructor_core.version import __version__
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
    assert "pip" not in yaml.safe_load(spec["runtimeEnvYAML"])  # the image carries the package (Dockerfile)
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
    assert "./dist" in config["file_mounts"].values()  # the built wheel, which a setup command installs
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


# ---------------------------------------------------------------- what the install steps install


@pytest.fixture(scope="module")
def project_wheel(tmp_path_factory) -> Path:
    """This project's wheel, built from a copy of the tree (no build/ or egg-info left in the checkout)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "instructor_core", "integrations"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(
            REPO / name,
            source / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}),
        )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(out), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = out.glob("instructor-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert "instructor_core/__init__.py" in archive.namelist()  # this project, not the index's namesake
    return wheel


def _dry_run(command: str, mounts: dict[str, Path], tmp_path: Path) -> list[dict]:
    """Run an example's shell install step with each remote folder of ``mounts`` at its local copy and ``pip``
    answering with a dry run's report (as in a fresh environment: no index, nothing installed); returns
    the report's install items."""
    for remote, local in mounts.items():
        command = command.replace(remote, str(local))
    shim, report = tmp_path / "bin", tmp_path / "report.json"
    shim.mkdir()
    (shim / "pip").write_text(
        f'#!/bin/sh\n[ "$1" = install ] || exit 64\nshift\n'
        f"exec {shlex.quote(sys.executable)} -m pip install --dry-run --ignore-installed --no-index --no-deps -q "
        f'--report {report} "$@"\n'
    )
    (shim / "pip").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(report.read_text())["install"]


def _check_installs_the_wheel(items: list[dict], wheel: Path) -> None:
    (item,) = items
    assert item["metadata"]["name"] == "instructor" and item["metadata"]["version"] == __version__
    assert item["download_info"]["url"].endswith("/" + wheel.name)  # the wheel that was built, from a file
    assert sorted(item["requested_extras"]) == ["qdrant", "ray"]


def test_ray_up_setup_installs_this_projects_wheel(project_wheel, tmp_path):
    config = yaml.safe_load((EXAMPLES / "cluster.yaml").read_text(encoding="utf-8"))
    (remote,) = [r for r, local in config["file_mounts"].items() if local == "./dist"]
    mounted = tmp_path / "mounted-dist"  # what file_mounts copies ./dist to on each node
    mounted.mkdir()
    shutil.copy2(project_wheel, mounted)
    (command,) = [c for c in config["setup_commands"] if "pip install" in c]
    _check_installs_the_wheel(_dry_run(command, {remote: mounted}, tmp_path), project_wheel)


def test_rayjob_image_installs_this_projects_wheel_on_the_ray_it_names(project_wheel, tmp_path):
    dockerfile = (EXAMPLES / "Dockerfile").read_text(encoding="utf-8")
    (copy,) = re.findall(r"^COPY (\S+) (\S+)$", dockerfile, re.M)
    assert copy[0].rstrip("/") == "dist"  # python -m build --wheel's output folder
    (command,) = re.findall(r"^RUN (.+)$", dockerfile, re.M)
    copied = tmp_path / "copied-dist"
    copied.mkdir()
    shutil.copy2(project_wheel, copied)
    _check_installs_the_wheel(_dry_run(command, {copy[1].rstrip("/"): copied}, tmp_path), project_wheel)
    # every pod runs that image, built on the Ray the job names
    (base,) = re.findall(r"^ARG BASE=rayproject/ray:(\S+)$", dockerfile, re.M)
    job = yaml.safe_load((EXAMPLES / "rayjob.yaml").read_text(encoding="utf-8"))
    cluster = job["spec"]["rayClusterSpec"]
    assert base.startswith(cluster["rayVersion"] + "-")
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    images = {g["template"]["spec"]["containers"][0]["image"] for g in groups}
    assert all(re.fullmatch(rf"REGISTRY/instructor-ray:{re.escape(base)}(-gpu)?", image) for image in images), images


def _ray_floor() -> Version:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    (requirement,) = [Requirement(r) for r in extras["ray"] if Requirement(r).name == "ray"]
    (floor,) = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    assert all(Requirement(r).specifier == requirement.specifier for r in extras["all"] if r.startswith("ray[data]"))
    return floor


def test_the_ray_floor_is_the_ray_the_tests_and_the_examples_run():
    floor = _ray_floor()
    job = yaml.safe_load((EXAMPLES / "rayjob.yaml").read_text(encoding="utf-8"))
    assert Version(job["spec"]["rayClusterSpec"]["rayVersion"]) == floor  # the examples run the floor itself
    ray = pytest.importorskip("ray")
    assert Version(ray.__version__) >= floor, "the installed Ray is older than the extra allows"
    # the Ray APIs the code needs, which Ray 2.40 (the earlier floor) lacked
    from ray.data.datasource.datasink import WriteResult  # noqa: F401  (Datasink.on_write_complete's argument)

    assert Version(ray.__version__).release[:2] == floor.release[:2], (
        f"the tests run Ray {ray.__version__}, the extra's floor is {floor}: raise the floor (and the examples) "
        "to the Ray the tests pass on, or run them on the floor"
    )
