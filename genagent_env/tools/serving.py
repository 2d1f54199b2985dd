"""Serve any generator with Ray Serve: :func:`serve_generator`, the ``genagent-serve`` command and
the deployment behind them (:class:`GeneratorServer`).

A generator served this way runs in its own processes (Serve *replicas*, each with its GPUs),
apart from the agent; the agent's environment reaches it through a remote tool
(:mod:`genagent_env.tools.remote`): ``generators="serve:APP"`` over a Serve handle, or
``generators="http://HOST:PORT/APP"`` over HTTP (the contract of :mod:`genagent_env.tools.wire`)::

    genagent-serve shapes-medium --replicas 2                          # a laptop: ShapesWorld
    CUDA_VISIBLE_DEVICES=4,5,6,7 genagent-serve flux-dev --replicas 4 --gpus-per-replica 1

Each replica builds its own generator from what was served: a registered name (with keyword
``options``), ``"module:factory"``, a :class:`~genagent_env.tools.base.Generator` class or
instance, a factory, or a plain ``(prompt, seed) -> image`` function. Calls from every client
are queued in the replica and run together (``@serve.batch``): up to ``max_batch_size`` images
per generator call, waiting at most ``batch_wait_timeout_s`` for a batch to fill. A request the
generator fails is that request's error; the others of the batch keep their images (the same
isolation as :func:`~genagent_env.tools.dispatch.generate_requests`, which runs the batch).

Ray is imported only here and in :class:`~genagent_env.tools.remote.ServeGenerator`, never by
``import genagent_env``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import tyro

from genagent_env.checks import is_real, short_repr
from genagent_env.extras import needs
from genagent_env.protocol import compile_arguments_schema
from genagent_env.registry import load_attribute, takes_no_arguments
from genagent_env.tools.base import FunctionGenerator, GenerationRequest, Generator
from genagent_env.tools.dispatch import generate_requests
from genagent_env.tools.wire import (
    GENERATE_PATH,
    INFO_PATH,
    MAX_ERROR_CHARS,
    ServiceInfo,
    WireError,
    parse_requests,
    results_payload,
)

if TYPE_CHECKING:
    from PIL.Image import Image

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: The largest ``generate`` body the HTTP endpoint reads.
MAX_BODY_BYTES = 64 * 2**20
#: Names ``genagent-serve`` knows besides the registry's: small models for trying a server on a laptop.
SERVE_PRESETS = {"tiny-sd": "genagent_env.tools.serving:tiny_sd_generator"}
_APP_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: Identities that name one generator object only: replaced by one for the whole deployment.
_INSTANCE_ID = re.compile(r"^(instance:|diffusers:object:[0-9a-f]{32}:)")


# ---------------------------------------------------------------------------------- what a replica runs


def build_generator(spec: Any, options: Mapping[str, Any] | None = None) -> Generator:
    """The generator that ``spec`` names, built with keyword ``options``: a registered name or a
    :data:`SERVE_PRESETS` name, ``"module:factory"``, a ``Generator`` class or instance, a factory
    (a callable taking no positional argument), or a ``(prompt, seed) -> image`` function."""
    from genagent_env.tools.registry import GENERATORS

    options = dict(options or {})
    if isinstance(spec, Generator):
        if options:
            raise ValueError("options are for building a generator; this one is built already")
        return spec
    label = spec if isinstance(spec, str) else None
    if isinstance(spec, str):
        spec = SERVE_PRESETS.get(spec, spec)
        if ":" not in spec:
            built = GENERATORS.make(spec, **options)
            return built if isinstance(built, Generator) else FunctionGenerator(built, name=label)
        spec = load_attribute(spec)
        if isinstance(spec, Generator) and not options:
            return spec
    if isinstance(spec, type) and issubclass(spec, Generator):
        return spec(**options)
    if not callable(spec):
        raise TypeError(f"cannot serve {short_repr(spec)}: give a generator name, a Generator, a factory or a function")
    if not options and not takes_no_arguments(spec):
        return FunctionGenerator(spec, name=label.rpartition(":")[2] if label else None)
    built = spec(**options)
    if isinstance(built, Generator):
        return built
    if callable(built):
        return FunctionGenerator(built, name=label.rpartition(":")[2] if label else None)
    raise TypeError(f"the factory {short_repr(spec)} returned {type(built).__name__}, not a Generator")


def served_cache_id(generator: Generator, deployment_id: str, cache_key: str | None = None) -> str | None:
    """The identity a deployment reports for ``generator``'s images: ``cache_key`` when given,
    else the generator's ``cache_id()``, except that an identity naming one object only (the
    base class's ``instance:...``, a diffusers pipeline object's) names the deployment instead,
    so that every replica reports the same one."""
    if cache_key is not None:
        return cache_key
    cache_id = generator.cache_id()
    if cache_id is None:
        return None
    match = _INSTANCE_ID.match(cache_id)
    if match is None:
        return cache_id
    return f"served:{deployment_id}:{type(generator).__qualname__}:{generator.name}:{cache_id[match.end():]}"


def tiny_sd_generator(steps: int = 2, size: int = 32, max_batch_size: int = 8, seed: int = 0,
                      device: str | None = None) -> Generator:
    """A tiny randomly initialised Stable-Diffusion tool (``tiny-sd``): noise images at CPU
    speed, for trying a server without weights. Its weights follow from ``seed``, so its
    identity is stable across processes and replicas."""
    from genagent_env.testing.tiny_diffusers import tiny_sd_pipeline
    from genagent_env.tools.diffusers_generator import DiffusersGenerator

    return DiffusersGenerator(
        tiny_sd_pipeline(seed=seed), name="tiny-sd", device=device, num_inference_steps=steps, height=size,
        width=size, max_batch_size=max_batch_size, cache_key=f"tiny-sd:seed={seed}",
    )


class _Counted(Generator):
    """Forwards to the served generator and counts its calls (the deployment's ``stats``)."""

    def __init__(self, inner: Generator, counts: dict[str, int]) -> None:
        self.inner, self.counts = inner, counts
        self.name, self.description = inner.name, inner.description

    def cache_id(self) -> str | None:
        return None  # the replica keeps no cache: clients do

    def generate_outcomes(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        self.counts["generator_calls"] += 1
        return self.inner.generate_outcomes(requests)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image]:
        self.counts["generator_calls"] += 1
        return self.inner.generate(requests)


class GeneratorServer:
    """The body of the Serve deployment: one generator per replica, every caller's requests
    queued and run in batches.

    Methods for a ``DeploymentHandle``: ``info()`` (the :class:`~genagent_env.tools.wire.ServiceInfo`
    payload), ``generate(payload)`` (PNGs as bytes) and ``stats()`` (counters of this replica).
    Over HTTP (``__call__``): ``GET /info``, ``POST /generate`` (PNGs as base64), ``GET /stats``.

    Args:
        spec, options: What to build (see :func:`build_generator`).
        settings: How it is served: ``max_batch_size``, ``batch_wait_timeout_s``, ``deployment_id``,
            ``cache_key`` and anything informative; all of it is in the info answer.
    """

    def __init__(self, spec: Any, options: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        with needs("serve", "serving a generator"):
            from ray import serve

        self.generator = build_generator(spec, options)
        self.max_batch_size = int(settings["max_batch_size"])
        self.counts = {"calls": 0, "requests": 0, "batches": 0, "generator_calls": 0}
        self.counted = _Counted(self.generator, self.counts)
        self.validator = compile_arguments_schema(self.generator.parameters(), self.generator.name)
        self.cache_id = served_cache_id(self.generator, str(settings["deployment_id"]), settings.get("cache_key"))
        public = {key: value for key, value in settings.items() if key != "cache_key"}
        self.info_payload = ServiceInfo(
            self.generator.name, self.generator.description, self.generator.parameters(), self.cache_id, public
        ).to_payload()

        async def run_batch(items: list[list[GenerationRequest]]) -> list[list[dict[str, Any]]]:
            return await self._run_batch(items)

        # Made here rather than with a decorator, so that the batch size is the deployment's.
        self.batched = serve.batch(
            max_batch_size=self.max_batch_size,
            batch_wait_timeout_s=float(settings["batch_wait_timeout_s"]),
            max_concurrent_batches=int(settings.get("max_concurrent_batches", 1)),
            batch_size_fn=_count_requests,  # a batch holds up to max_batch_size images, not calls
        )(run_batch)

    async def info(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.info_payload))

    async def stats(self) -> dict[str, Any]:
        return {**self.counts, "pid": os.getpid()}

    async def generate(self, payload: Any) -> dict[str, Any]:
        """The ``generate`` answer to ``payload``, PNGs as bytes (for a handle)."""
        return await self._generate(parse_requests(payload), binary=True)

    async def __call__(self, request: Any) -> Any:
        """HTTP: ``GET /info``, ``POST /generate``, ``GET /stats`` under the app's route."""
        from starlette.responses import JSONResponse

        root = request.scope.get("root_path", "") or ""
        path = request.url.path
        path = "/" + (path[len(root):] if root and path.startswith(root) else path).strip("/")
        if request.method == "GET" and path in (INFO_PATH, "/"):
            return JSONResponse(self.info_payload)
        if request.method == "GET" and path == "/stats":
            return JSONResponse(await self.stats())
        if request.method == "POST" and path == GENERATE_PATH:
            body = await request.body()
            if len(body) > MAX_BODY_BYTES:
                return JSONResponse({"error": f"the body is longer than {MAX_BODY_BYTES} bytes"}, status_code=413)
            try:
                requests = parse_requests(json.loads(body))
            except (ValueError, RecursionError) as error:  # not JSON, or not the contract (WireError)
                reason = str(error) if isinstance(error, WireError) else "the body is not JSON"
                return JSONResponse({"error": reason}, status_code=400)
            return JSONResponse(await self._generate(requests, binary=False))
        return JSONResponse(
            {"error": f"no {request.method} {path} here: GET {INFO_PATH}, POST {GENERATE_PATH}, GET /stats"},
            status_code=404,
        )

    async def _generate(self, requests: list[GenerationRequest], binary: bool) -> dict[str, Any]:
        self.counts["calls"] += 1
        self.counts["requests"] += len(requests)
        results: list[dict[str, Any]] = []
        valid = []
        for index, request in enumerate(requests):
            problems = self._check(request)  # the service keeps to its own schema, whoever the caller is
            why = f"ValueError: the arguments do not fit {self.generator.name}'s schema: {' '.join(problems)}"
            results.append({"error": why[:MAX_ERROR_CHARS]} if problems else {})
            if not problems:
                valid.append(index)
        size = self.max_batch_size
        chunks = [valid[start : start + size] for start in range(0, len(valid), size)]
        answers = await asyncio.gather(*(self.batched([requests[i] for i in chunk]) for chunk in chunks))
        for chunk, answer in zip(chunks, answers):
            for index, entry in zip(chunk, answer):
                results[index] = entry
        if not binary:
            import base64

            for entry in results:
                if "png" in entry:
                    entry["png"] = base64.b64encode(entry["png"]).decode("ascii")
        return {"cache_id": self.cache_id, "results": results}

    def _check(self, request: GenerationRequest) -> list[str]:
        """What is wrong with the request's arguments by the tool's schema (sizes only where it declares them)."""
        arguments: dict[str, Any] = {**request.extra, "prompt": request.prompt, "seed": request.seed}
        for key, value in (("width", request.width), ("height", request.height)):
            if value is not None and key in self.validator.names:
                arguments[key] = value
        return self.validator.errors(arguments)

    async def _run_batch(self, items: list[list[GenerationRequest]]) -> list[list[dict[str, Any]]]:
        """One generator call for the requests of every queued call (off the event loop, so that
        more calls queue meanwhile); each call gets its own results back."""
        self.counts["batches"] += 1
        flat = [request for item in items for request in item]
        results = await asyncio.to_thread(self._results, flat)
        out, start = [], 0
        for item in items:
            out.append(results[start : start + len(item)])
            start += len(item)
        return out

    def _results(self, requests: list[GenerationRequest]) -> list[dict[str, Any]]:
        outcomes = generate_requests(self.counted, requests, batch_size=self.max_batch_size)
        results: list[dict[str, Any]] = results_payload(outcomes, None, binary=True)["results"]
        return results


def _count_requests(items: list[list[GenerationRequest]]) -> int:
    return sum(len(item) for item in items)


# ---------------------------------------------------------------------------------- deploying


@dataclass(frozen=True)
class ServedGenerator:
    """A deployed generator: where it is and how to reach it.

    Attributes:
        app: The Serve application's name.
        spec: ``"serve:APP"``, the name that reaches it over a handle.
        url: ``http://HOST:PORT/APP``, the name that reaches it over HTTP.
        handle: The application's ``DeploymentHandle``.
    """

    app: str
    spec: str
    url: str
    handle: Any

    def delete(self) -> None:
        """Take the application down (its replicas stop)."""
        from ray import serve

        serve.delete(self.app)


def start_ray(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    log_to_driver: bool = True,
) -> bool:
    """Connect to the Ray cluster at ``address``, or start one on this machine (``None``), unless
    this process is connected already; then start Serve with its HTTP proxy on ``host:port``
    (an existing Serve instance keeps its own). Returns whether a cluster was started here.
    ``log_to_driver=False`` keeps the replicas' logs (one line per request) out of this process's
    output; they stay in Ray's log folder.

    A cluster started here is for this machine only: its processes talk over loopback addresses,
    and no usage statistics are sent (``RAY_USAGE_STATS_ENABLED=0``, unless set otherwise); its
    HTTP proxy gets 60 s to start and to answer health checks (``RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S``,
    ``RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S``, unless set otherwise), not Serve's 5 and 10 s,
    which a busy machine misses.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        # On a busy machine (a training run beside the server) Serve's HTTP proxy can take longer
        # than Serve's 5 s to report ready, and Serve then kills it: give a cluster started here
        # a minute. Its processes inherit this process's environment.
        os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")
        os.environ.setdefault("RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S", "60")
    if address is None and "ray" not in sys.modules:
        # Ray takes a local cluster's address from the machine's network interface unless this
        # is set (read once, when ray is imported): keep a single-machine cluster on loopback.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    with needs("serve", "serving a generator"):
        import ray
        from ray import serve

    started = False
    if not ray.is_initialized():
        if address is None:
            ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, log_to_driver=log_to_driver)
            started = True
        else:
            ray.init(address=address, log_to_driver=log_to_driver)
    serve.start(http_options={"host": host, "port": port})
    return started


def http_address() -> tuple[str, int]:
    """Where the running Serve instance's HTTP proxy listens (the default when it cannot be read)."""
    try:  # no public API gives it in Ray 2.60 (pinned by the serve extra); fall back on a change
        from ray.serve.context import _get_global_client

        client = _get_global_client()
        assert client is not None
        config = client.http_config
        host = str(config.host or DEFAULT_HOST)
        return ("127.0.0.1" if host in ("0.0.0.0", "::") else host), int(config.port)
    except Exception:  # noqa: BLE001 - only the printed URL depends on it
        return DEFAULT_HOST, DEFAULT_PORT


def serve_generator(
    generator: Any,
    *,
    app: str | None = None,
    options: Mapping[str, Any] | None = None,
    replicas: int = 1,
    gpus_per_replica: float = 0.0,
    cpus_per_replica: float = 1.0,
    max_batch_size: int = 8,
    batch_wait_timeout_s: float = 0.01,
    max_concurrent_batches: int = 1,
    max_ongoing_requests: int | None = None,
    cache_key: str | None = None,
) -> ServedGenerator:
    """Deploy ``generator`` as the Serve application ``app`` (route ``/APP``) and wait until its
    replicas are up. Starts Ray and Serve (:func:`start_ray`) if this process has neither.
    Deploying an ``app`` that exists replaces it.

    Args:
        generator: What each replica builds (see :func:`build_generator`): a registered name
            (``"flux-dev"``), ``"module:factory"``, a ``Generator`` class or instance, a factory
            or a ``(prompt, seed) -> image`` function. Prefer names and factories for models:
            an instance is pickled to every replica.
        app: The application's name and HTTP route (default: the last part of a name or import
            path, an instance's tool name, a class's or function's ``__name__``).
        options: Keyword arguments for the factory (``{"device": "cuda"}``).
        replicas: Replicas, each with its own generator.
        gpus_per_replica: GPUs each replica holds (Ray sets its ``CUDA_VISIBLE_DEVICES``);
            0 on a CPU machine. Fractions share a GPU.
        cpus_per_replica: CPUs each replica holds (torch uses as many threads).
        max_batch_size: The most images in one generator call; calls from many clients are
            merged up to it, a larger call is split.
        batch_wait_timeout_s: How long a batch waits to fill after its first request.
        max_concurrent_batches: Batches one replica runs at once, each in its own thread: more
            than 1 only for a generator that is safe to call from several threads (ShapesWorld;
            not a diffusers pipeline), so that one slow batch does not hold up the rest.
        max_ongoing_requests: Calls one replica takes at once (default: enough to fill batches).
        cache_key: The identity to report for the images (default: the generator's
            ``cache_id()``; see :func:`served_cache_id`). Give one that names the weights
            and settings (``"flux-dev+my-lora-v3"``) to share a client's disk cache across
            deployments.
    """
    with needs("serve", "serving a generator"):
        import ray
        from ray import serve

    if app is None:  # a spec's last part, an instance's tool name, a class's or a function's name
        if isinstance(generator, str):
            app = generator.rpartition(":")[2]
        else:
            app = generator.name if isinstance(generator, Generator) else getattr(generator, "__name__", None)
    if not isinstance(app, str) or not _APP_NAME.fullmatch(app):
        raise ValueError(f"app must be 1-64 letters, digits, '_', '.' or '-', got {short_repr(app)} (pass app=...)")
    for label, value, low in (("replicas", replicas, 1), ("max_batch_size", max_batch_size, 1),
                              ("max_concurrent_batches", max_concurrent_batches, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {short_repr(value)}")
    for label, number in (("gpus_per_replica", gpus_per_replica), ("cpus_per_replica", cpus_per_replica),
                          ("batch_wait_timeout_s", batch_wait_timeout_s)):
        if not is_real(number) or number < 0:
            raise ValueError(f"{label} must be a number >= 0, got {short_repr(number)}")
    if not ray.is_initialized():
        start_ray()
    total = ray.cluster_resources()
    for resource, each in (("GPU", gpus_per_replica), ("CPU", cpus_per_replica)):
        have = float(total.get(resource, 0.0))
        if replicas * each > have:
            raise ValueError(
                f"{replicas} replica(s) x {each:g} {resource}(s) need {replicas * each:g} {resource}s; this Ray "
                f"cluster has {have:g}. Use fewer replicas or {resource}s per replica"
                + (" (on a CPU machine: --gpus-per-replica 0)" if resource == "GPU" else "")
                + ", or make them visible to Ray (CUDA_VISIBLE_DEVICES, `ray start --num-gpus`)."
            )
    from genagent_env import __version__

    settings = {
        "app": app,
        "max_batch_size": max_batch_size,
        "batch_wait_timeout_s": float(batch_wait_timeout_s),
        "max_concurrent_batches": max_concurrent_batches,
        "replicas": replicas,
        "gpus_per_replica": float(gpus_per_replica),
        "cpus_per_replica": float(cpus_per_replica),
        "deployment_id": uuid.uuid4().hex,
        "server": f"genagent-env {__version__}, ray {ray.__version__}",
        "cache_key": cache_key,
    }
    deployment = serve.deployment(
        name="GeneratorServer",
        num_replicas=replicas,
        ray_actor_options={"num_cpus": float(cpus_per_replica), "num_gpus": float(gpus_per_replica)},
        max_ongoing_requests=max_ongoing_requests or max(32, 4 * max_batch_size),
    )(GeneratorServer)
    handle = serve.run(deployment.bind(generator, dict(options or {}), settings), name=app, route_prefix=f"/{app}")
    host, port = http_address()
    url = f"http://{host}:{port}/{app}"
    return ServedGenerator(app=app, spec=f"serve:{app}", url=url, handle=handle)


# ---------------------------------------------------------------------------------- the command


@dataclass
class ServeArgs:
    """Serve a generator with Ray Serve, for agents to call over HTTP or a Serve handle."""

    generator: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="GENERATOR")]
    """a registered generator (shapes-medium, flux-dev, sdxl, ...), tiny-sd (a tiny random diffusers
    pipeline, for trying it out), or module:factory"""
    app: str | None = None
    """the Serve application's name and HTTP route (default: the generator's name)"""
    replicas: int = 1
    """replicas, each with its own copy of the generator"""
    gpus_per_replica: float = 0.0
    """GPUs per replica (0 on a CPU machine); the cluster must see replicas x this many"""
    cpus_per_replica: float = 1.0
    """CPUs per replica (torch threads)"""
    max_batch_size: int = 8
    """the most images in one generator call (calls from all clients are merged up to it)"""
    batch_wait_timeout_s: float = 0.01
    """how long a batch waits to fill"""
    option: tuple[str, ...] = ()
    """KEY=VALUE arguments for the generator's factory (VALUE read as JSON when it parses, else text),
    e.g. --option device=cuda num_inference_steps=28"""
    cache_key: str | None = None
    """the identity reported for the images (default: the generator's own cache_id)"""
    host: str = DEFAULT_HOST
    """the HTTP proxy's address (0.0.0.0 serves other machines too)"""
    port: int = DEFAULT_PORT
    """the HTTP proxy's port"""
    address: str | None = None
    """a Ray cluster to deploy into (auto: the one `ray start` runs here); default: start one for this command"""
    detach: bool = False
    """deploy and return (needs --address: the application stays in that cluster)"""


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``["device=cuda", "steps=4"]`` → ``{"device": "cuda", "steps": 4}`` (values read as JSON when they parse)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals or not key.isidentifier():
            raise ValueError(f"--option takes KEY=VALUE with KEY a Python name, got {pair!r}")
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return options


def main(argv: Sequence[str] | None = None) -> ServedGenerator:
    """``genagent-serve``: deploy, print how to reach it, and (unless ``--detach``) serve until
    interrupted, then take it down."""
    args = tyro.cli(ServeArgs, args=argv)
    options = parse_options(args.option)
    already = "ray" in sys.modules and sys.modules["ray"].is_initialized()
    if args.detach and args.address is None and not already:
        raise SystemExit("--detach needs --address: a cluster started by this command ends with it")
    started = start_ray(args.address, host=args.host, port=args.port)
    served = serve_generator(
        args.generator, app=args.app, options=options, replicas=args.replicas,
        gpus_per_replica=args.gpus_per_replica, cpus_per_replica=args.cpus_per_replica,
        max_batch_size=args.max_batch_size, batch_wait_timeout_s=args.batch_wait_timeout_s, cache_key=args.cache_key,
    )
    print(
        f"serving {args.generator} as Serve application {served.app!r}: {args.replicas} replica(s), "
        f"{args.gpus_per_replica:g} GPU(s) each, batches of up to {args.max_batch_size} images\n"
        f"  over HTTP:  generators={served.url!r}   (python -m benchmarks.run --generators {served.url})\n"
        f"  over a Serve handle, from a process on this Ray cluster:  generators={served.spec!r}",
        flush=True,
    )
    if args.detach:
        return served
    print("Ctrl-C stops it.", flush=True)
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell ignores it in background jobs
        signal.signal(signum, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        served.delete()
        if started:
            import ray
            from ray import serve

            serve.shutdown()
            ray.shutdown()
    return served


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def cli() -> None:
    """The console script's entry point."""
    main()


__all__ = [
    "SERVE_PRESETS",
    "GeneratorServer",
    "ServeArgs",
    "ServedGenerator",
    "build_generator",
    "http_address",
    "main",
    "parse_options",
    "serve_generator",
    "served_cache_id",
    "start_ray",
    "tiny_sd_generator",
]
