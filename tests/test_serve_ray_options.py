"""The Ray Serve deployment's options as the flags make them, and the example Serve config's app builder
(no cluster: building a Serve application binds the deployment without starting Ray)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from instructor_core.cli import build_parser, main
from instructor_core.cli.commands.serve import settings_and_loader
from instructor_core.errors import InputError
from instructor_serve.ray_serve import DEPLOYMENT_NAME, RayServeOptions, _argv, _serve_parser, deployment_options
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "serve" / "ray_serve_config.yaml"


def _options(*flags: str) -> dict:
    args = build_parser().parse_args(["serve", "--model", "m", "--engine", "ray", *flags])
    settings, _ = settings_and_loader(args)
    return deployment_options(RayServeOptions.from_args(args), settings)


def test_fixed_replicas_and_batches_that_can_fill():
    assert _options("--replicas", "3", "--drain-seconds", "12") == {
        "num_replicas": 3,
        "max_ongoing_requests": 256,  # --max-batch-size: single-input requests can fill one cut
        "max_queued_requests": 1024,
        "backpressure_config": {"status_code": 429, "retry_after_s": 1},
        "ray_actor_options": {"num_cpus": 1.0},
        "graceful_shutdown_timeout_s": 12.0,
        "max_constructor_retry_count": 2,
    }
    options = _options("--max-batch-size", "64", "--replica-gpus", "1")
    assert options["max_ongoing_requests"] == 64 and options["num_replicas"] == 1
    assert options["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 1.0}
    unbounded = _options("--max-queued-requests", "-1", "--max-replicas-per-node", "1")
    assert "max_queued_requests" not in unbounded and "backpressure_config" not in unbounded
    assert unbounded["max_replicas_per_node"] == 1


def test_autoscaling_from_the_flags():
    options = _options("--max-replicas", "4", "--max-ongoing-requests", "128")
    assert "num_replicas" not in options
    assert options["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 32.0}
    options = _options("--min-replicas", "0", "--max-replicas", "3", "--replicas", "2",
                       "--target-ongoing-requests", "8")  # fmt: skip
    assert options["autoscaling_config"] == {
        "min_replicas": 0, "max_replicas": 3, "target_ongoing_requests": 8.0, "initial_replicas": 2,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--min-replicas", "2"), "--min-replicas needs --max-replicas"),
        (("--target-ongoing-requests", "4"), "--target-ongoing-requests needs --max-replicas"),
        (("--min-replicas", "3", "--max-replicas", "2"), "--max-replicas 2 is below --min-replicas 3"),
        (("--max-replicas", "4", "--replicas", "5"), "--replicas 5 (the replicas to start with) is outside"),
        (("--max-replicas", "4", "--max-ongoing-requests", "8", "--target-ongoing-requests", "9"), "at most"),
        (("--max-queued-requests", "0"), "--max-queued-requests must be >= 1, or -1"),
    ],
)
def test_combinations_serve_would_refuse_are_named(flags, message):
    with pytest.raises(InputError, match=re.escape(message)):
        _options(*flags)


def test_the_local_engine_refuses_ray_flags(capsys):
    assert main(["serve", "--model", "no-such-model", "--max-replicas", "2"]) == 2
    assert "--max-replicas applies to --engine ray only" in capsys.readouterr().err


def test_config_args_become_the_cli_flags():
    parser = _serve_parser(build_parser())
    argv = _argv(
        {"model": "m", "max_batch_tokens": 4096, "auto_truncate": False, "trust_remote_code": False,
         "prompt": {"query": "Q: ", "document": "D: "}, "replicas": 2},
        parser,
    )  # fmt: skip
    assert argv == ["--model", "m", "--max-batch-tokens", "4096", "--no-auto-truncate",
                    "--prompt", "query=Q: ", "--prompt", "document=D: ", "--replicas", "2"]  # fmt: skip
    with pytest.raises(InputError, match="'port' is set by the Serve config itself"):
        _argv({"model": "m", "port": 80}, parser)
    with pytest.raises(InputError, match="unknown key 'max_batch'"):
        _argv({"model": "m", "max_batch": 3}, parser)


def test_the_example_serve_config_builds_its_application():
    yaml = pytest.importorskip("yaml")
    pytest.importorskip("ray.serve", reason="needs ray[serve] (the serve-ray extra)")
    import importlib

    from ray.serve.schema import ServeDeploySchema

    config = ServeDeploySchema.model_validate(yaml.safe_load(Path(EXAMPLE).read_text()))
    (app_config,) = config.applications
    module, _, name = app_config.import_path.partition(":")
    builder = getattr(importlib.import_module(module), name)
    app = builder(app_config.args)
    deployment = app._bound_deployment  # the Application's one deployment (no public accessor)
    # the config's deployments: entry must name the deployment the builder makes, or `serve deploy` refuses it
    assert [d.name for d in app_config.deployments] == [deployment.name] == [DEPLOYMENT_NAME]
    settings, _load, label = deployment.init_args
    assert label == "hkunlp/instructor-large"
    assert settings.max_batch_tokens == 16384 and settings.max_batch_size == 256
    assert deployment.max_ongoing_requests == 256


def test_a_failed_deployment_is_the_replicas_last_exception_in_one_line():
    from types import SimpleNamespace

    from instructor_serve.ray_serve import _failure

    message = (
        "Failed to update the deployments.\nRuntimeError: Traceback (most recent call last):\n"
        '  File "x.py", line 3, in load\n'
        "    raise ModelFolderError(...)\n"
        "instructor_core.model.loading.ModelFolderError: '/m' is not a local folder\n"
    )
    app = SimpleNamespace(deployments={DEPLOYMENT_NAME: SimpleNamespace(message=message)})
    serve = SimpleNamespace(status=lambda: SimpleNamespace(applications={"app": app}))
    failed = RuntimeError("Deploying application app failed: Failed to update the deployments ['InstructorEmbedder'].")
    expected = "the replicas failed to start: ModelFolderError: '/m' is not a local folder"
    assert _failure(serve, "app", failed) == expected
    gone = SimpleNamespace(status=lambda: (_ for _ in ()).throw(ConnectionError("no cluster")))
    assert _failure(gone, "app", failed) == f"the deployment failed: {failed}"
