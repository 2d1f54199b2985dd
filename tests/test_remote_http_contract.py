"""The HTTP remote tool against a scripted stand-in service on loopback (no Ray): every way a service
can answer badly is a per-request error, transient failures are retried with backoff, a hung
service times out, a missing one is named at construction, and the cache follows the model's identity."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

from genagent_env.tools.base import GenerationRequest
from genagent_env.tools.cache import GenerationCache
from genagent_env.tools.dispatch import generate_requests
from genagent_env.tools.remote import (
    HTTPGenerator,
    RemoteServiceUnavailableError,
    is_remote_spec,
)
from genagent_env.tools.wire import (
    PROTOCOL,
    RemoteGenerationError,
    WireError,
    parse_requests,
    requests_payload,
)

FAST = {"retries": 2, "backoff_s": 0.05, "max_backoff_s": 0.1, "connect_timeout_s": 5.0, "timeout_s": 5.0}
SCHEMA = {"type": "object", "properties": {"prompt": {"type": "string", "minLength": 1}, "seed": {"type": "integer"}},
          "required": ["prompt"]}


def png(colour: tuple[int, int, int], size: int = 8) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def colour_of(seed: int) -> tuple[int, int, int]:
    return (seed % 256, (3 * seed) % 256, 200)


class Service:
    """A stand-in service: ``info`` and ``generate`` answer what the test scripts, and every body
    it received is kept. By default it paints each request's seed as a colour."""

    def __init__(self) -> None:
        self.cache_id: str | None = "stand-in:v1"
        self.info: Callable[[], tuple[int, Any]] = lambda: (200, self.info_payload())
        self.generate: Callable[[dict[str, Any]], tuple[int, Any]] = self.paint
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def info_payload(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL, "name": "stand-in", "description": "Paints the seed.", "parameters": SCHEMA,
                "cache_id": self.cache_id, "settings": {"max_batch_size": 8}}

    def paint(self, body: dict[str, Any]) -> tuple[int, Any]:
        results = [{"png": png(colour_of(seed))} for seed in body["seeds"]]
        return 200, {"cache_id": self.cache_id, "results": results}


@pytest.fixture
def service() -> Iterator[tuple[Service, str]]:
    state = Service()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep the test output clean
            pass

        def reply(self, status: int, payload: Any) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/app/info":
                self.reply(*state.info())
            else:
                self.reply(404, {"error": "not here"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.bodies.append(body)
            if self.path == "/app/generate":
                self.reply(*state.generate(body))
            else:
                self.reply(404, {"error": "not here"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/app"
    finally:
        server.shutdown()
        server.server_close()


def requests(*seeds: int) -> list[GenerationRequest]:
    return [GenerationRequest(f"prompt {seed}", seed) for seed in seeds]


def kinds(outcomes: list[Any]) -> list[str]:
    return ["image" if isinstance(outcome, Image.Image) else type(outcome).__name__ for outcome in outcomes]


# ---------------------------------------------------------------------------------- the happy path


def test_a_batch_is_one_call_with_every_request_and_comes_back_in_order(service):
    state, url = service
    tool = HTTPGenerator(url, **FAST)
    assert (tool.name, tool.description, tool.parameters()) == ("stand-in", "Paints the seed.", SCHEMA)
    assert tool.cache_id() == "remote:stand-in:v1"
    batch = [GenerationRequest("a", 1, 64, None, {"steps": 4}), GenerationRequest("b", 2), GenerationRequest("c", 3)]
    images = tool.generate(batch)
    assert [image.getpixel((0, 0)) for image in images] == [colour_of(1), colour_of(2), colour_of(3)]
    assert state.bodies == [{"prompts": ["a", "b", "c"], "seeds": [1, 2, 3],
                             "sizes": [[64, None], [None, None], [None, None]],
                             "extra": [{"steps": 4}, {}, {}]}]
    assert parse_requests(state.bodies[0]) == batch  # the server side reads back what was sent


def test_the_env_uses_a_url_like_any_tool_name(service):
    _, url = service
    assert is_remote_spec(url) and is_remote_spec("serve:app") and not is_remote_spec("shapes-medium")
    env = gym.make("genagent_env:GenAgent-v0", generators=url, max_rounds=1)
    env.reset(seed=0, options={"prompt": "a red circle"})
    obs, *_ = env.step('<tool_call>{"name": "stand-in", "arguments": {"prompt": "a red circle", "seed": 5}}'
                       '</tool_call>')
    assert obs["text"].startswith("image_1 was generated by stand-in")
    assert tuple(obs["image"][0, 0]) == colour_of(5)
    env.close()


def test_a_request_the_service_fails_is_that_requests_error_only(service):
    state, url = service

    def one_fails(body: dict[str, Any]) -> tuple[int, Any]:
        results = [{"error": "ValueError: seed 2 is cursed"} if seed == 2 else {"png": png(colour_of(seed))}
                   for seed in body["seeds"]]
        return 200, {"cache_id": state.cache_id, "results": results}

    state.generate = one_fails
    outcomes = HTTPGenerator(url, **FAST).generate_outcomes(requests(1, 2, 3))
    assert kinds(outcomes) == ["image", "RemoteGenerationError", "image"]
    assert str(outcomes[1]) == "ValueError: seed 2 is cursed"
    assert len(state.bodies) == 1  # a request's own failure is not retried


# ---------------------------------------------------------------------------------- bad answers


def huge_png_header() -> str:
    """A PNG whose header claims 100 000 x 100 000 pixels (a decompression bomb): refused unread."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
    return base64.b64encode(data + chunk(b"IEND", b"")).decode()


@pytest.mark.parametrize(
    "entry, why",
    [
        ({"png": "not base64!"}, "not valid base64"),
        ({"png": base64.b64encode(b"GIF89a....").decode()}, "not a PNG"),
        ({"png": base64.b64encode(b"\x89PNG\r\n\x1a\nbroken").decode()}, "broken PNG"),
        ({"png": 42}, "base64 text or bytes"),
        ({"image": "x"}, "instead of an image"),
        ("just text", "instead of an image"),
        ({"png": huge_png_header()}, "too large to decode"),
    ],
)
def test_a_bad_entry_is_that_requests_error(service, entry, why):
    state, url = service
    state.generate = lambda body: (200, {"cache_id": state.cache_id, "results": [{"png": png((1, 2, 3))}, entry]})
    outcomes = HTTPGenerator(url, **FAST).generate_outcomes(requests(1, 2))
    assert kinds(outcomes) == ["image", "WireError"]
    assert why in str(outcomes[1])


@pytest.mark.parametrize(
    "status, answer, why",
    [
        (200, b"<html>not json</html>", "not JSON"),
        (200, {"results": []}, "no cache_id"),
        (200, {"cache_id": "stand-in:v1", "results": [{"png": png((1, 2, 3))}]}, "1 results for 2 requests"),
        (200, {"cache_id": "stand-in:v1", "results": "nope"}, "results for 2 requests"),
        (200, [1, 2], "not a JSON object"),
        (400, {"error": "sizes[0] must be [width, height]"}, "HTTP 400"),
        (404, {"error": "gone"}, "HTTP 404"),
    ],
)
def test_an_unusable_answer_is_an_error_for_every_request_and_no_crash(service, status, answer, why):
    state, url = service
    tool = HTTPGenerator(url, **FAST)
    state.generate = lambda body: (status, answer)
    outcomes = tool.generate_outcomes(requests(1, 2))
    assert kinds(outcomes) == ["RemoteGenerationError", "RemoteGenerationError"]
    assert why in str(outcomes[0]) and url in str(outcomes[0])
    assert len(state.bodies) == 1  # not transient: not retried
    with pytest.raises(RemoteGenerationError):
        tool.generate(requests(1, 2))


def test_a_bad_answer_reaches_the_agent_as_a_failed_tool_call(service):
    state, url = service
    env = gym.make("genagent_env:GenAgent-v0", generators=url, max_rounds=1)
    env.reset(seed=0, options={"prompt": "a red circle"})
    state.generate = lambda body: (200, b"garbage")
    call = '<tool_call>{"name": "stand-in", "arguments": {"prompt": "a red circle", "seed": 5}}</tool_call>'
    obs, _, terminated, _, info = env.step(call)
    assert obs["text"].startswith("The tool stand-in failed and made no image (RemoteGenerationError: bad answer")
    assert not terminated and info["round"] == 0
    state.generate = state.paint
    obs, *_ = env.step(call)  # the episode goes on
    assert obs["text"].startswith("image_1 was generated by stand-in")
    env.close()


# ---------------------------------------------------------------------------------- retries and timeouts


def test_transient_failures_are_retried_with_backoff_then_succeed(service):
    state, url = service
    failures = iter([(503, {"error": "restarting"}), (502, b"bad gateway"), (500, b"replica died")])

    def flaky(body: dict[str, Any]) -> tuple[int, Any]:
        return next(failures, None) or state.paint(body)

    state.generate = flaky
    tool = HTTPGenerator(url, retries=3, backoff_s=0.05, max_backoff_s=1.0)
    start = time.perf_counter()
    images = tool.generate(requests(7))
    elapsed = time.perf_counter() - start
    assert images[0].getpixel((0, 0)) == colour_of(7) and len(state.bodies) == 4
    assert elapsed >= 0.05 + 0.1 + 0.2  # waits of 0.05, 0.1, 0.2 s: doubling


def test_retries_run_out_into_an_error_per_request(service):
    state, url = service
    state.generate = lambda body: (503, {"error": "overloaded"})
    outcomes = HTTPGenerator(url, **FAST).generate_outcomes(requests(1, 2))
    assert kinds(outcomes) == ["RemoteServiceUnavailableError"] * 2
    assert "HTTP 503" in str(outcomes[0]) and "(3 attempts)" in str(outcomes[0])
    assert len(state.bodies) == 3


def test_a_hung_service_times_out_without_retrying(service):
    state, url = service
    release = threading.Event()

    def hang(body: dict[str, Any]) -> tuple[int, Any]:
        release.wait(10)
        return state.paint(body)

    state.generate = hang
    tool = HTTPGenerator(url, **{**FAST, "timeout_s": 0.5})
    start = time.perf_counter()
    outcomes = tool.generate_outcomes(requests(1, 2))
    elapsed = time.perf_counter() - start
    release.set()
    assert kinds(outcomes) == ["RemoteTimeoutError"] * 2 and "0.5" in str(outcomes[0])
    assert 0.4 < elapsed < 3.0 and len(state.bodies) == 1
    state.generate = state.paint
    assert tool.generate(requests(3))[0].getpixel((0, 0)) == colour_of(3)  # and works again


# ---------------------------------------------------------------------------------- missing services


def test_no_service_at_the_url_says_so_at_construction_with_how_to_start_one():
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/flux-dev"
    with pytest.raises(RemoteServiceUnavailableError) as caught:
        HTTPGenerator(url, **FAST)
    message = str(caught.value)
    assert url in message and "genagent-serve" in message and "Connection refused (3 attempts)" in message
    with pytest.raises(RemoteServiceUnavailableError, match="genagent-serve"):  # by name, default retries
        gym.make("genagent_env:GenAgent-v0", generators=url)


def test_something_else_at_the_url_is_not_taken_for_a_service(service):
    state, url = service
    state.info = lambda: (200, {"protocol": "other/9", "name": "x"})
    with pytest.raises(RemoteServiceUnavailableError, match="not as a genagent generator service.*other/9"):
        HTTPGenerator(url, **FAST)
    with pytest.raises(RemoteServiceUnavailableError, match="HTTP 404"):
        HTTPGenerator(url.rsplit("/", 1)[0] + "/elsewhere", **FAST)


@pytest.mark.parametrize("url", ["ftp://host/app", "http:///app", "http://host:99999/app", "http://h/app?x=1"])
def test_a_malformed_url_is_refused(url):
    with pytest.raises(ValueError):
        HTTPGenerator(url)


# ---------------------------------------------------------------------------------- the cache


def test_the_cache_follows_the_models_identity_and_a_swapped_model_is_never_served_from_it(service):
    state, url = service
    cache = GenerationCache()
    tool = HTTPGenerator(url, **FAST)
    (first,) = generate_requests(tool, requests(9), cache=cache)
    generate_requests(tool, requests(9), cache=cache)
    assert cache.stats.hits == 1 and len(state.bodies) == 1

    # Another model behind the same URL: a new tool asks who it is and gets its own keys.
    state.cache_id = "stand-in:v2"
    state.generate = lambda body: (200, {"cache_id": state.cache_id, "results": [{"png": png((9, 9, 9))}] *
                                         len(body["seeds"])})
    fresh = HTTPGenerator(url, **FAST)
    assert fresh.cache_id() == "remote:stand-in:v2"
    (image,) = generate_requests(fresh, requests(9), cache=cache)
    assert image.getpixel((0, 0)) == (9, 9, 9) and cache.stats.misses == 2

    # The old tool learns of the change from the answer: its images are dropped, its keys change.
    with pytest.warns(RuntimeWarning, match="changed from 'stand-in:v1' to 'stand-in:v2'"):
        (outcome,) = generate_requests(tool, requests(10), cache=cache)
    assert isinstance(outcome, RemoteGenerationError) and "changed while this call ran" in str(outcome)
    assert tool.cache_id() == "remote:stand-in:v2"
    (image,) = generate_requests(tool, requests(9), cache=cache)  # now the new model's entry
    assert image.getpixel((0, 0)) == (9, 9, 9)
    assert first.getpixel((0, 0)) == colour_of(9)


def test_a_service_without_identity_is_never_cached(service):
    state, url = service
    state.cache_id = None
    tool = HTTPGenerator(url, **FAST)
    cache = GenerationCache()
    assert tool.cache_id() is None
    generate_requests(tool, requests(1), cache=cache)
    generate_requests(tool, requests(1), cache=cache)
    assert len(state.bodies) == 2 and cache.stats.hits == 0


# ---------------------------------------------------------------------------------- the contract itself


@pytest.mark.parametrize(
    "body, why",
    [
        ([], "JSON object"),
        ({"prompts": []}, "1 to"),
        ({"prompts": ["a"], "seeds": [-1]}, "seeds[0]"),
        ({"prompts": ["a"], "seeds": [True]}, "seeds[0]"),
        ({"prompts": ["a"], "seeds": [1, 2]}, "one entry per prompt"),
        ({"prompts": ["a"], "seeds": [1], "sizes": [[0, 5]]}, "sizes[0]"),
        ({"prompts": ["a"], "seeds": [1], "extra": [[]]}, "extra[0]"),
        ({"prompts": [3], "seeds": [1]}, "prompts[0]"),
        ({"prompts": ["a"], "seeds": [1], "code": "import os"}, "unknown key"),
    ],
)
def test_the_service_side_refuses_a_body_that_breaks_the_contract(body, why):
    with pytest.raises(WireError, match=why.replace("[", r"\[").replace("]", r"\]")):
        parse_requests(body)


def test_a_request_round_trips_through_the_contract():
    batch = [GenerationRequest("x", 2**32 - 1, None, 48, {"guidance_scale": 3.5, "negative_prompt": "blur"})]
    assert parse_requests(json.loads(json.dumps(requests_payload(batch)))) == batch


def test_the_remote_tool_does_not_import_ray_or_make_genagent_env_heavy():
    code = ("import sys, genagent_env\nfrom genagent_env.tools import remote, wire\n"
            "print([m for m in ('ray', 'PIL', 'torch', 'starlette') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_pickled_tools_keep_working(service):
    import pickle

    _, url = service
    tool = pickle.loads(pickle.dumps(HTTPGenerator(url, **FAST)))
    assert np.asarray(tool.generate(requests(4))[0])[0, 0].tolist() == list(colour_of(4))
