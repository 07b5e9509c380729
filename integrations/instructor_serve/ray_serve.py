"""Scale out on Ray Serve: the app of ``instructor serve``, one copy in each replica of a Serve deployment.

``instructor serve --engine ray --replicas N`` (or a Serve config whose ``import_path`` is
:func:`app_builder`, ``examples/serve/ray_serve_config.yaml``) deploys :data:`DEPLOYMENT_NAME`. Each
replica loads the model once and serves the very Starlette app that :func:`~instructor_serve.create_app`
makes for the one-process server: the same routes, limits, error envelope, ``/info`` and ``/metrics``
(each replica's own). Serve's HTTP proxy, bound at ``--host``/``--port``, routes each request to a
replica; every response says which replica and node answered it (``X-Instructor-Replica``,
``X-Instructor-Node``).

Batching: by tokens, inside each replica, with the app's own :class:`~instructor_serve.batcher.Batcher`,
not with ``@serve.batch``. Serve hands a replica up to ``max_ongoing_requests`` requests at once
(raised here from Serve's 5 to ``--max-batch-size``, 256 by default, so that single-input requests can
fill a cut); their inputs join the replica's one queue, which is cut by ``--max-batch-tokens``, sorted by
length into padded forward passes, and stripped of the inputs whose client has gone. ``@serve.batch``
(Ray 2.60) can size a batch by tokens too (its ``batch_size_fn``), but it gathers whole calls, so a
request's inputs could not share passes with other requests' inputs; it re-sums the batch's size on each
arrival, puts an item that does not fit at the back of the queue (behind later requests), fails an item
larger than the budget instead of giving it a pass of its own, and knows neither the queue bound
(429 at once) nor a client's disconnect. Using it would also mean a second embedding path beside the
app's, which the Ray deployment would then have to keep equal to the local server's by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from instructor_core.errors import InputError, install_hint
from instructor_core.model.encoder import InstructorEncoder
from instructor_serve.app import ServerState, create_app
from instructor_serve.settings import ServeSettings, is_loopback

__all__ = [
    "DEPLOYMENT_NAME",
    "NODE_HEADER",
    "REPLICA_HEADER",
    "InstructorDeployment",
    "RayServeOptions",
    "app_builder",
    "build_application",
    "deployment_options",
    "serve_on_ray",
]

log = logging.getLogger("instructor_serve")

#: The deployment's name (a Serve config's ``deployments: - name:`` overrides its options).
DEPLOYMENT_NAME = "InstructorEmbedder"
#: Response headers naming the replica (Serve's replica id) and the node's address that answered.
REPLICA_HEADER = "x-instructor-replica"
NODE_HEADER = "x-instructor-node"
#: How long a request that reaches a replica whose app is still starting waits for it.
_READY_WAIT_S = 30.0
#: Requests each proxy holds for the deployment when ``--max-queued-requests`` is not given.
DEFAULT_MAX_QUEUED_REQUESTS = 1024
#: Tries of a replica's constructor (the model's loading): a bad model folder does not heal on retry.
_CONSTRUCTOR_RETRIES = 2
#: Flags a Serve config sets itself (``http_options``, ``proxy_location``, the application's name).
_CONFIG_LEVEL = ("host", "port", "engine", "ray_address", "proxy_location")
#: A traceback's last line: ``package.module.SomeError: what happened``.
_RAISED = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception): \S")


@dataclass(frozen=True)
class RayServeOptions:
    """How the deployment scales and what each replica reserves (the ``--engine ray`` flags).

    Attributes:
        replicas: Fixed replicas; with autoscaling, the replicas to start with (None: Serve's choice).
        min_replicas: Autoscaling: fewest replicas (None: 1).
        max_replicas: Autoscaling on when set: most replicas.
        target_ongoing_requests: Autoscaling: ongoing requests per replica to keep (None: a quarter
            of ``max_ongoing_requests``).
        max_ongoing_requests: Requests one replica holds at once (None: the settings' ``max_batch_size``).
        max_queued_requests: Requests each proxy holds waiting for a replica, then 429 (-1: no bound).
        replica_cpus: CPUs each replica reserves.
        replica_gpus: GPUs each replica reserves.
        max_replicas_per_node: Replicas one node runs at most (None: no bound).
        ray_address: The cluster (None: a local Ray instance).
        proxy_location: Where Serve runs HTTP proxies: ``EveryNode``, ``HeadOnly`` or ``Disabled``.
        app_name: The Serve application's name.
    """

    replicas: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_ongoing_requests: float | None = None
    max_ongoing_requests: int | None = None
    max_queued_requests: int = DEFAULT_MAX_QUEUED_REQUESTS
    replica_cpus: float = 1.0
    replica_gpus: float = 0.0
    max_replicas_per_node: int | None = None
    ray_address: str | None = None
    proxy_location: str = "EveryNode"
    app_name: str = "instructor"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RayServeOptions:
        """The options of parsed ``instructor serve`` arguments (a flag not given keeps its default)."""
        given = {name: getattr(args, name, None) for name in cls.__dataclass_fields__}
        return cls(**{name: value for name, value in given.items() if value is not None})

    @property
    def autoscaling(self) -> bool:
        """Whether Serve scales the replicas (``--max-replicas`` given)."""
        return self.max_replicas is not None


def deployment_options(options: RayServeOptions, settings: ServeSettings) -> dict[str, Any]:
    """The keyword arguments of ``serve.deployment(...).options()`` for ``options`` (plain, JSON-able).

    Raises:
        InputError: A combination Serve would refuse or that cannot run, named by its flags.
    """
    max_ongoing = options.max_ongoing_requests if options.max_ongoing_requests is not None else settings.max_batch_size
    if max_ongoing < 1:
        raise InputError(f"--max-ongoing-requests must be >= 1, got {max_ongoing}")
    if options.max_queued_requests < -1 or options.max_queued_requests == 0:
        raise InputError(f"--max-queued-requests must be >= 1, or -1 for no bound; got {options.max_queued_requests}")
    for flag, amount in (("--replica-cpus", options.replica_cpus), ("--replica-gpus", options.replica_gpus)):
        if not amount >= 0:
            raise InputError(f"{flag} must be >= 0, got {amount}")
    actor: dict[str, Any] = {"num_cpus": options.replica_cpus}
    if options.replica_gpus:
        actor["num_gpus"] = options.replica_gpus
    out: dict[str, Any] = {
        "max_ongoing_requests": max_ongoing,
        "ray_actor_options": actor,
        # Serve stops routing to a replica being stopped, and waits this long for the requests it holds.
        "graceful_shutdown_timeout_s": max(1.0, float(settings.drain_seconds)),
        "max_constructor_retry_count": _CONSTRUCTOR_RETRIES,
    }
    if options.max_queued_requests != -1:
        out["max_queued_requests"] = options.max_queued_requests
        out["backpressure_config"] = {"status_code": 429, "retry_after_s": 1}
    if options.max_replicas_per_node is not None:
        out["max_replicas_per_node"] = options.max_replicas_per_node
    if options.autoscaling:
        out["autoscaling_config"] = _autoscaling(options, max_ongoing)
    else:
        for flag, value in (("--min-replicas", options.min_replicas),
                            ("--target-ongoing-requests", options.target_ongoing_requests)):  # fmt: skip
            if value is not None:
                raise InputError(f"{flag} needs --max-replicas (it turns autoscaling on)")
        out["num_replicas"] = options.replicas if options.replicas is not None else 1
    return out


def _autoscaling(options: RayServeOptions, max_ongoing: int) -> dict[str, Any]:
    """Serve's ``autoscaling_config`` of ``options`` (autoscaling on)."""
    assert options.max_replicas is not None
    low = options.min_replicas if options.min_replicas is not None else 1
    if options.max_replicas < max(low, 1):
        raise InputError(f"--max-replicas {options.max_replicas} is below --min-replicas {low}")
    if options.replicas is not None and not low <= options.replicas <= options.max_replicas:
        raise InputError(
            f"--replicas {options.replicas} (the replicas to start with) is outside --min-replicas {low} .. "
            f"--max-replicas {options.max_replicas}"
        )
    target = options.target_ongoing_requests
    if target is None:
        target = max(1.0, max_ongoing / 4)
    if not 0 < target <= max_ongoing:
        raise InputError(f"--target-ongoing-requests must be > 0 and at most --max-ongoing-requests {max_ongoing}")
    scaling: dict[str, Any] = {"min_replicas": low, "max_replicas": options.max_replicas,
                               "target_ongoing_requests": target}  # fmt: skip
    if options.replicas is not None:
        scaling["initial_replicas"] = options.replicas
    return scaling


# ------------------------------------------------------------------------------------------- the replica
class _ReplicaApp:
    """The app as one replica serves it: a request waits (bounded) for the app's model to be in
    place, and every response names the replica and node that answered it."""

    def __init__(self, app: Any, state: ServerState, replica: str, node: str) -> None:  # noqa: ANN401 (ASGI)
        self.app = app
        self.state = state
        self._headers = [(REPLICA_HEADER.encode(), replica.encode()), (NODE_HEADER.encode(), node.encode())]

    def add_exception_handler(self, *args: Any) -> None:  # noqa: ANN401 (Starlette's signature)
        """Serve maps its own exceptions (back-pressure) to responses through this, on the app inside."""
        self.app.add_exception_handler(*args)

    async def _ready(self) -> None:
        # The model is loaded before the app is made (so the replica turns healthy only once loaded);
        # the app's lifespan puts it in place a tick after startup.
        deadline = asyncio.get_running_loop().time() + _READY_WAIT_S
        state = self.state
        while state.batcher is None and state.load_error is None and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self._ready()
        headers = self._headers

        async def tagged(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, tagged)


class InstructorDeployment:
    """One replica: loads the model once, then serves :func:`~instructor_serve.create_app`'s app.

    Made a Serve deployment by :func:`build_application` (``serve.ingress()`` late-bound: Serve calls
    :meth:`__serve_build_asgi_app__` on the replica, after the constructor).

    Args:
        settings: The server's limits and defaults.
        load: Loads the encoder (runs on the replica's node; the model must be readable there).
        model_label: The model as the user named it.
    """

    def __init__(self, settings: ServeSettings, load: Callable[[], InstructorEncoder], model_label: str) -> None:
        self._settings = settings
        self._load = load
        self._model_label = model_label
        self._state: ServerState | None = None

    async def __serve_build_asgi_app__(self) -> _ReplicaApp:
        """Load the model (on a thread; a failure fails the replica's start, as Serve reports it),
        then make the app around it."""
        import ray
        from ray import serve

        encoder = await asyncio.to_thread(self._load)
        app, state = create_app(self._settings, lambda: encoder, model_label=self._model_label)
        self._state = state
        replica = serve.get_replica_context().replica_id.unique_id
        return _ReplicaApp(app, state, replica, ray.util.get_node_ip_address())

    async def check_health(self) -> None:
        """Serve's periodic health check: unhealthy when the app could not take the model."""
        if self._state is not None and self._state.load_error is not None:
            raise RuntimeError(f"the model failed to load: {self._state.load_error}")


def _serve_module() -> Any:  # noqa: ANN401 (the ray.serve module)
    try:
        from ray import serve
    except ImportError as exc:
        raise ImportError(f"--engine ray needs Ray Serve: {install_hint('serve-ray')} ({exc})") from exc
    return serve


def build_application(
    settings: ServeSettings,
    load: Callable[[], InstructorEncoder],
    *,
    model_label: str,
    options: Mapping[str, Any],
) -> Any:  # noqa: ANN401 (a ray.serve Application)
    """The Serve application: :class:`InstructorDeployment` as :data:`DEPLOYMENT_NAME`, bound to its
    arguments, with the deployment options of :func:`deployment_options`."""
    serve = _serve_module()
    ingress = serve.ingress()(InstructorDeployment)
    deployment = serve.deployment(name=DEPLOYMENT_NAME)(ingress).options(**options)
    return deployment.bind(settings, load, model_label)


def app_builder(args: Mapping[str, Any]) -> Any:  # noqa: ANN401 (a ray.serve Application)
    """The application of a Serve config (``import_path: instructor_serve.ray_serve:app_builder``).

    Args:
        args: The config's ``args``: ``instructor serve`` flags without their dashes (``model``,
            ``query_instruction``, ``max_batch_tokens``, ``replicas``, ``max_replicas`` ...; a flag
            with no value is ``true``; ``prompt`` a mapping of name to text). The config's own
            ``deployments:`` entry named :data:`DEPLOYMENT_NAME` overrides the options these give.

    Raises:
        InputError: An unknown key, a key the Serve config sets itself (host, port ...), a value
            the flag refuses.
    """
    from instructor_core.cli import build_parser
    from instructor_core.cli.commands.serve import model_label, settings_and_loader

    parser = build_parser()
    argv = ["serve", *_argv(args, _serve_parser(parser))]
    try:
        parsed = parser.parse_args(argv)
    except SystemExit:  # argparse printed why on stderr
        raise InputError(f"the Serve config's args do not parse as instructor serve flags: {argv[1:]}") from None
    settings, load = settings_and_loader(parsed)
    options = deployment_options(RayServeOptions.from_args(parsed), settings)
    return build_application(settings, load, model_label=model_label(parsed.model), options=options)


def _serve_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices["serve"]
    raise AssertionError("the instructor parser has no serve subcommand")


def _argv(args: Mapping[str, Any], parser: argparse.ArgumentParser) -> list[str]:
    """``instructor serve`` flags from a Serve config's ``args`` mapping."""
    actions = {a.dest: a for a in parser._actions if a.option_strings}
    argv: list[str] = []
    for key, value in args.items():
        if key in _CONFIG_LEVEL:
            raise InputError(
                f"args: {key!r} is set by the Serve config itself (http_options, proxy_location), not by the app's args"
            )
        action = actions.get(key)
        if action is None or key in ("help", "log_level"):
            raise InputError(f"args: unknown key {key!r}; the keys are instructor serve's flags without dashes")
        flag = next(o for o in action.option_strings if o.startswith("--"))
        if value is None or value is False and not isinstance(action, argparse.BooleanOptionalAction):
            continue
        if value is True or value is False:
            argv.append(flag if value else "--no-" + flag[2:])
        elif key == "prompt" and isinstance(value, Mapping):
            argv += [item for name, text in value.items() for item in (flag, f"{name}={text}")]
        elif isinstance(value, (list, tuple)):
            argv += [item for one in value for item in (flag, str(one))]
        else:
            argv += [flag, str(value)]
    return argv


# ------------------------------------------------------------------------------------------- the CLI
def _start_ray(address: str | None, need_cpus: float) -> Any:  # noqa: ANN401 (the ray module)
    _serve_module()
    import ray

    logging.getLogger("ray").setLevel(logging.WARNING)
    if address is not None:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        cores = os.cpu_count() or 1
        ray.init(
            address="local",  # a new instance, never one a ray_current_cluster file points to
            num_cpus=max(cores, math.ceil(need_cpus)),
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    return ray


def serve_on_ray(
    args: argparse.Namespace,
    settings: ServeSettings,
    load: Callable[[], InstructorEncoder],
    *,
    replicas: int | None,
) -> int:
    """``instructor serve --engine ray``: deploy, serve until SIGTERM or Ctrl-C, then take the app down.

    The deployment goes on the cluster at ``--ray-address`` (else a local Ray instance started for it),
    with Serve's HTTP proxy bound at ``--host``/``--port``. On SIGTERM or Ctrl-C the application is
    deleted (Serve stops routing to its replicas and lets each finish what it holds, for at most
    ``--drain-seconds``), and Serve is shut down when no other application runs on it.

    Returns:
        0 after a clean stop; 2 when the deployment failed (the replicas' first error printed in one line).
    """
    options = RayServeOptions.from_args(args)
    if replicas is not None and options.replicas != replicas:
        options = RayServeOptions(**{**options.__dict__, "replicas": replicas})
    deployment = deployment_options(options, settings)  # refused before Ray starts
    if not is_loopback(settings.host) and settings.api_key is None:
        print(
            f"instructor serve: warning: binding {settings.host} without --api-key: anyone who can reach this "
            "port can use the model",
            file=sys.stderr,
        )
    count = deployment.get("num_replicas") or deployment["autoscaling_config"]["max_replicas"]
    ray = _start_ray(options.ray_address, count * options.replica_cpus)
    serve = _serve_module()
    stop = threading.Event()
    serving = False
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def on_signal(sig: int, frame: FrameType | None) -> None:
        stop.set()
        if not serving:  # still deploying: leave serve.run, and take down what it made
            raise KeyboardInterrupt("interrupted while deploying")

    # Ours, not ray.init's (a SIGTERM handler that exits at once, leaving the application up on a cluster).
    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        serve.start(proxy_location=options.proxy_location, http_options={"host": settings.host, "port": settings.port})
        from instructor_core.cli.commands.serve import model_label

        app = build_application(settings, load, model_label=model_label(args.model), options=deployment)
        level = getattr(args, "log_level", "info").upper()
        try:
            serve.run(app, name=options.app_name, route_prefix="/",
                      logging_config={"log_level": level, "enable_access_log": False})  # fmt: skip
        except RuntimeError as exc:  # the deployment failed: the replicas' error, in one line
            print(f"instructor serve: error: {_failure(serve, options.app_name, exc)}", file=sys.stderr)
            return 2
        serving = True
        where = f"http://{settings.host}:{settings.port}"
        scaling = deployment.get("autoscaling_config")
        size = (f"{scaling['min_replicas']}..{scaling['max_replicas']} replicas (autoscaling)" if scaling
                else f"{deployment['num_replicas']} replica(s)")  # fmt: skip
        print(
            f"instructor serve: {size} of {args.model} on Ray Serve at {where} (application {options.app_name!r}); "
            "SIGTERM or Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
        print(
            f"instructor serve: stopping: the replicas finish the requests they hold (at most "
            f"{deployment['graceful_shutdown_timeout_s']:g} s)",
            file=sys.stderr,
            flush=True,
        )
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _take_down(serve, options.app_name)
        ray.shutdown()


def _failure(serve: Any, app_name: str, exc: BaseException) -> str:  # noqa: ANN401 (the ray.serve module)
    """Why the deployment failed, in one line: the last exception of a replica's traceback as Serve
    reports it (``ModelFolderError: ...``), else Serve's own message."""
    try:
        message = serve.status().applications[app_name].deployments[DEPLOYMENT_NAME].message
    except Exception:  # the status is gone with the cluster: Serve's message is all there is
        message = ""
    raised = [line.strip() for line in message.splitlines() if _RAISED.match(line.strip())]
    if raised:
        name, _, text = raised[-1].partition(": ")
        return f"the replicas failed to start: {name.rsplit('.', 1)[-1]}: {text}"
    return "the deployment failed: " + " ".join(str(exc).split())[:500]


def _take_down(serve: Any, app_name: str) -> None:  # noqa: ANN401 (the ray.serve module)
    """Delete this application; shut Serve down when no other application runs on it."""
    try:
        serve.delete(app_name)
        if not serve.status().applications:
            serve.shutdown()
    except Exception as exc:  # the cluster went away: nothing left to take down
        log.warning("taking the Serve application down failed: %s", exc)
