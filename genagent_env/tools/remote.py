"""Generators served apart from the agent, used like local ones: :class:`HTTPGenerator` and :class:`ServeGenerator`.

A remote tool is a :class:`~genagent_env.tools.base.Generator` whose images are made by a service:
one started with ``genagent-serve`` (:mod:`genagent_env.tools.serving`, Ray Serve), or anything
else that speaks the small JSON contract of :mod:`genagent_env.tools.wire`. By name::

    gym.make("genagent_env:GenAgent-v0", generators="http://127.0.0.1:8000/flux-dev")  # over HTTP
    gym.make("genagent_env:GenAgent-v0", generators="serve:flux-dev")  # a Serve app, over a handle

and the same names in ``python -m benchmarks.run --generators``. ``http://`` and ``https://``
URLs are the service's base URL (``genagent-serve`` serves app ``APP`` at ``http://HOST:PORT/APP``);
``serve:APP`` is the Ray Serve application ``APP`` on the Ray cluster this process is connected
to (or, if it is not, the one ``ray.init(address="auto")`` finds; ``RAY_ADDRESS`` picks another).

What the tool does:

- At construction it asks the service who it is (``info``): name, description, the argument
  schema the agent sees, and the model's identity. No service there raises
  :class:`RemoteServiceUnavailableError`, naming the URL or app and how to start one.
- ``generate`` sends a whole batch in one call and gets one result per request: an image, or that
  request's own error (:class:`~genagent_env.tools.wire.RemoteGenerationError`). It never raises
  for the service's sake: a failed, timed-out or garbled call is an error for each request of the
  batch, which the environment shows the agent as a failed tool call.
- Transient failures (connection refused or reset, HTTP 408/429/5xx, a Serve replica that died or
  is restarting, back-pressure) are retried with exponential backoff (``backoff_s``, doubling, at
  most ``max_backoff_s``), ``retries`` times, within ``timeout_s`` for the whole call. A call that
  runs past ``timeout_s`` is not retried (it would double the wait): its requests get
  :class:`RemoteTimeoutError`.
- The generation cache keys its images by the identity the service reports (``cache_id`` of its
  model and settings), so a different model behind the same URL is never served from the cache.
  Every answer names the model that made it; if that is not the one the keys were made for, the
  images are dropped (their requests get an error saying so), the tool takes the new identity and
  the next call goes on. A service whose identity is ``null`` is never cached.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import warnings
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from genagent_env.checks import is_real, short_repr
from genagent_env.extras import needs
from genagent_env.tools.base import GenerationRequest, Generator, images_or_raise
from genagent_env.tools.wire import (
    GENERATE_PATH,
    INFO_PATH,
    RemoteGenerationError,
    ServiceInfo,
    WireError,
    parse_results,
    requests_payload,
)

if TYPE_CHECKING:
    from PIL.Image import Image

T = TypeVar("T")

#: How a generator name says "served elsewhere".
REMOTE_PREFIXES = ("http://", "https://", "serve:")
#: The largest answer read from an HTTP service (a batch of large PNGs, base64).
MAX_RESPONSE_BYTES = 1 << 30
#: HTTP statuses worth a retry: the service is busy, restarting or its worker died.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_START_HINT = (
    "Start one with `genagent-serve NAME` (e.g. `genagent-serve shapes-medium --port 8000`, then "
    "generators='http://127.0.0.1:8000/shapes-medium'); see docs/remote-generators.md."
)


class RemoteServiceUnavailableError(ConnectionError):
    """No generator service answers where the tool was pointed (or it stopped answering)."""


class RemoteTimeoutError(TimeoutError):
    """The service did not answer a call within the tool's ``timeout_s``."""


class TransientServiceError(Exception):
    """A failure that a later attempt may not meet (raised by a transport, retried by the tool)."""


def is_remote_spec(spec: object) -> bool:
    """Whether ``spec`` names a remote generator (``http://...``, ``https://...`` or ``serve:APP``)."""
    return isinstance(spec, str) and spec.startswith(REMOTE_PREFIXES)


def remote_generator(spec: str, **options: Any) -> RemoteGenerator:
    """The remote tool named by ``spec`` (see :func:`is_remote_spec`); ``options`` are the
    tool's keyword arguments (``timeout_s``, ``retries``, ...)."""
    if spec.startswith("serve:"):
        return ServeGenerator(spec.removeprefix("serve:"), **options)
    if spec.startswith(("http://", "https://")):
        return HTTPGenerator(spec, **options)
    raise ValueError(f"{spec!r} names no remote generator: use http://HOST:PORT/APP, https://... or serve:APP")


class RemoteGenerator(Generator):
    """A generator that runs in a service (base of :class:`HTTPGenerator` and :class:`ServeGenerator`).

    Subclasses say where the service is (:meth:`where`, :meth:`how_to_start`) and move payloads
    (:meth:`fetch_info`, :meth:`post_generate`); this class checks them, retries, and keeps the
    service's identity for the cache.

    Args:
        name: The tool's name (default: the name the service gives).
        timeout_s: The longest one ``generate`` call may take, retries included.
        connect_timeout_s: The longest the first ``info`` call may take, retries included.
        retries: Attempts after the first for a transient failure.
        backoff_s: The wait before the first retry; it doubles on each retry.
        max_backoff_s: The longest wait between two attempts.
    """

    #: Whether the transport carries PNGs as bytes (a Serve handle) rather than base64 text.
    binary = False

    def __init__(
        self,
        *,
        name: str | None = None,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
    ) -> None:
        for label, value in (("timeout_s", timeout_s), ("connect_timeout_s", connect_timeout_s)):
            if not is_real(value) or not value > 0:
                raise ValueError(f"{label} must be a positive number of seconds, got {short_repr(value)}")
        for label, value in (("backoff_s", backoff_s), ("max_backoff_s", max_backoff_s)):
            if not is_real(value) or not value >= 0:
                raise ValueError(f"{label} must be a number of seconds >= 0, got {short_repr(value)}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {short_repr(retries)}")
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.retries = retries
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self._lock = threading.Lock()
        self.info = self._connect()
        self.name = name or self.info.name
        self.description = self.info.description

    # ------------------------------------------------------------ transport (subclasses)

    @abstractmethod
    def where(self) -> str:
        """The service's address, as the user wrote it (for messages)."""
        raise NotImplementedError

    def how_to_start(self) -> str:
        """What to do when nothing answers at :meth:`where`."""
        return _START_HINT

    @abstractmethod
    def fetch_info(self, timeout_s: float) -> Any:
        """The service's ``info`` answer (decoded). Raise :class:`TransientServiceError` for a
        failure worth retrying, :class:`RemoteTimeoutError` past ``timeout_s``."""
        raise NotImplementedError

    @abstractmethod
    def post_generate(self, payload: dict[str, Any], timeout_s: float) -> Any:
        """The service's ``generate`` answer (decoded) to ``payload``; raises as :meth:`fetch_info`."""
        raise NotImplementedError

    # ------------------------------------------------------------ the Generator interface

    def parameters(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.info.parameters))  # a fresh copy every time

    def cache_id(self) -> str | None:
        """``remote:<the service's cache_id>``, or ``None`` when the service says its images must not be cached."""
        cache_id = self.info.cache_id
        return None if cache_id is None else f"remote:{cache_id}"

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image]:
        return images_or_raise(self.generate_outcomes(requests))

    def generate_outcomes(self, requests: Sequence[GenerationRequest]) -> list[Image | Exception]:
        """One image per request, or the exception that explains why there is none; never raises."""
        count = len(requests)
        if not count:
            return []
        expected = self.info.cache_id
        try:
            payload = requests_payload(requests)
            answer = self._with_retries(lambda remaining: self.post_generate(payload, remaining), self.timeout_s)
            cache_id, outcomes = parse_results(answer, count)
        except TransientServiceError as error:
            return [RemoteServiceUnavailableError(f"{self.where()} is not answering: {error}") for _ in range(count)]
        except RemoteTimeoutError as error:
            return [RemoteTimeoutError(str(error)) for _ in range(count)]
        except Exception as error:  # noqa: BLE001 - a garbled answer fails its requests, not the caller
            detail = " ".join(str(error).split())[:200]
            return [RemoteGenerationError(f"bad answer from {self.where()}: {detail}") for _ in range(count)]
        if cache_id != expected:
            self._new_identity(expected, cache_id)
            why = (
                f"the model behind {self.where()} changed while this call ran (it is now {short_repr(cache_id, 60)}); "
                "its images were dropped so that no cache mixes two models. Call again."
            )
            return [RemoteGenerationError(why) for _ in range(count)]
        return outcomes

    def refresh(self) -> ServiceInfo:
        """Ask the service again who it is (a new identity means new cache keys from now on)."""
        info = self._connect()
        with self._lock:
            self.info = info
        return info

    def __getstate__(self) -> dict[str, Any]:  # a lock (and a subclass's live handle) does not pickle
        state = dict(self.__dict__)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------ private

    def _connect(self) -> ServiceInfo:
        try:
            payload = self._with_retries(self.fetch_info, self.connect_timeout_s)
        except (TransientServiceError, RemoteTimeoutError) as error:
            detail = " ".join(str(error).split())[:300]
            raise RemoteServiceUnavailableError(
                f"no generator service answers at {self.where()} ({detail}). {self.how_to_start()}"
            ) from None
        try:
            return ServiceInfo.from_payload(payload)
        except WireError as error:
            raise RemoteServiceUnavailableError(
                f"{self.where()} answered, but not as a genagent generator service: {error}. {self.how_to_start()}"
            ) from None

    def _new_identity(self, old: str | None, new: str | None) -> None:
        with self._lock:
            if self.info.cache_id == new:
                return  # another thread saw the change first
            self.info = dataclasses.replace(self.info, cache_id=new)
        warnings.warn(
            f"{self.name}: the model behind {self.where()} changed from {short_repr(old, 60)} to "
            f"{short_repr(new, 60)}; new cache keys from now on",
            RuntimeWarning,
            stacklevel=3,
        )

    def _with_retries(self, attempt: Callable[[float], T], budget_s: float) -> T:
        """``attempt(seconds left)``, again after a :class:`TransientServiceError` with exponential
        backoff, ``retries`` times at most and within ``budget_s`` in all."""
        deadline = time.monotonic() + budget_s
        failures = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RemoteTimeoutError(f"{self.where()} did not answer within {budget_s:g} s")
            try:
                return attempt(remaining)
            except TransientServiceError as error:
                failures += 1
                delay = min(self.max_backoff_s, self.backoff_s * 2 ** (failures - 1))
                if failures > self.retries or time.monotonic() + delay >= deadline:
                    tries = f"{failures} attempt{'s' if failures > 1 else ''}"
                    raise TransientServiceError(f"{error} ({tries})") from None
                time.sleep(delay)


class HTTPGenerator(RemoteGenerator):
    """A generator service over HTTP: ``GET URL/info`` and ``POST URL/generate`` (see
    :mod:`genagent_env.tools.wire`), with the standard library's ``http.client``.

    Args:
        url: The service's base URL, ``http://HOST:PORT/APP`` (or ``https://``).
        **options: :class:`RemoteGenerator`'s arguments (``timeout_s``, ``retries``, ...).
    """

    def __init__(self, url: str, **options: Any) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be a string like 'http://127.0.0.1:8000/shapes-medium', got {short_repr(url)}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"{url!r}: give the service's base URL, without a query, fragment or credentials")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"{url!r} has a bad port") from None
        self.url = url.rstrip("/")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, port
        self.base_path = parts.path.rstrip("/")
        super().__init__(**options)

    def where(self) -> str:
        return self.url

    def fetch_info(self, timeout_s: float) -> Any:
        return self._exchange("GET", INFO_PATH, None, timeout_s)

    def post_generate(self, payload: dict[str, Any], timeout_s: float) -> Any:
        return self._exchange("POST", GENERATE_PATH, payload, timeout_s)

    def _exchange(self, method: str, path: str, payload: Any, timeout_s: float) -> Any:
        import http.client

        connection_class = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(self.host, self.port, timeout=timeout_s)
        body = None if payload is None else json.dumps(payload, allow_nan=False).encode("utf-8")
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, self.base_path + path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read(MAX_RESPONSE_BYTES + 1)
            status = response.status
        except TimeoutError:
            raise RemoteTimeoutError(f"{self.url} did not answer within {timeout_s:.3g} s") from None
        except (OSError, http.client.HTTPException) as error:  # refused, reset, cut off: the service may be restarting
            raise TransientServiceError(f"{type(error).__name__}: {error}") from None
        finally:
            connection.close()
        if len(data) > MAX_RESPONSE_BYTES:
            raise WireError(f"the answer is longer than {MAX_RESPONSE_BYTES} bytes")
        if status != 200:
            text = " ".join(data[:300].decode("utf-8", "replace").split())
            message = f"HTTP {status} from {self.url}{path}: {text or '(no body)'}"
            # A failing info call (404: nothing is served there, yet) is retried too, then reported as no service.
            if status in TRANSIENT_STATUSES or path == INFO_PATH:
                raise TransientServiceError(message)
            raise RemoteGenerationError(message)
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            raise WireError(f"the answer from {self.url}{path} is not JSON") from None


class ServeGenerator(RemoteGenerator):
    """A generator deployed with :func:`genagent_env.tools.serving.serve_generator` (or
    ``genagent-serve``), called through a Ray Serve ``DeploymentHandle``: no HTTP, PNGs as bytes.

    Args:
        app: The Serve application's name.
        address: The Ray cluster to connect to when this process is not connected yet
            (default: ``RAY_ADDRESS``, else ``"auto"``, the cluster running on this machine).
        **options: :class:`RemoteGenerator`'s arguments (``timeout_s``, ``retries``, ...).
    """

    binary = True

    def __init__(self, app: str, *, address: str | None = None, **options: Any) -> None:
        if not isinstance(app, str) or not app:
            raise ValueError(f"app must be the name of a Serve application, got {short_repr(app)}")
        self.app = app
        self.address = address
        self._handle: Any = None
        super().__init__(**options)

    def where(self) -> str:
        return f"serve:{self.app}"

    def how_to_start(self) -> str:
        return (
            f"Deploy it with `genagent-serve NAME --app {self.app} --address auto` on this Ray cluster, or "
            f"serve_generator(NAME, app={self.app!r}) in this process; see docs/remote-generators.md."
        )

    def fetch_info(self, timeout_s: float) -> Any:
        return self._call("info", None, timeout_s)

    def post_generate(self, payload: dict[str, Any], timeout_s: float) -> Any:
        return self._call("generate", payload, timeout_s)

    def close(self) -> None:
        self._handle = None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_handle"] = None  # made again on first use
        return state

    def _handle_or_connect(self) -> Any:
        if self._handle is not None:
            return self._handle
        with needs("serve", "a generator served with Ray Serve"):
            import ray
            from ray import serve
            from ray.serve.exceptions import RayServeException

        if not ray.is_initialized():
            address = self.address or os.environ.get("RAY_ADDRESS") or "auto"
            try:
                ray.init(address=address, log_to_driver=False)
            except ConnectionError as error:
                reason = " ".join(str(error).split())[:120]
                raise TransientServiceError(f"no Ray cluster at {address!r} ({reason})") from None
        try:
            self._handle = serve.get_app_handle(self.app)
        except RayServeException as error:
            try:
                running = ", ".join(sorted(serve.status().applications)) or "none"
            except Exception:  # noqa: BLE001 - only a hint for the message
                running = "unknown"
            reason = " ".join(str(error).split())[:160]
            raise TransientServiceError(f"{reason} Applications running: {running}.") from None
        return self._handle

    def _call(self, method: str, payload: Any, timeout_s: float) -> Any:
        from ray import exceptions as ray_errors
        from ray.serve import exceptions as serve_errors

        transient = (
            ray_errors.RayActorError,  # the replica died (ActorDiedError) or cannot be reached now
            ray_errors.WorkerCrashedError,
            ray_errors.ObjectLostError,
            serve_errors.BackPressureError,
            serve_errors.DeploymentUnavailableError,
            serve_errors.ReplicaUnavailableError,
        )
        handle = self._handle_or_connect()
        try:
            bound = getattr(handle, method)
            response = bound.remote() if payload is None else bound.remote(payload)
        except transient as error:
            raise TransientServiceError(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}") from None
        try:
            return response.result(timeout_s=timeout_s)
        except TimeoutError:
            response.cancel()
            raise RemoteTimeoutError(f"serve:{self.app} did not answer within {timeout_s:.3g} s") from None
        except transient as error:
            raise TransientServiceError(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}") from None


__all__ = [
    "REMOTE_PREFIXES",
    "HTTPGenerator",
    "RemoteGenerator",
    "RemoteServiceUnavailableError",
    "RemoteTimeoutError",
    "ServeGenerator",
    "TransientServiceError",
    "is_remote_spec",
    "remote_generator",
]
