"""Generators served with Ray Serve on loopback and used as remote tools, over a handle and over HTTP:
the same images as the local generator (ShapesWorld, a tiny diffusers pipeline), concurrent calls
merged into fewer generator calls, a replica killed mid-run (retried; the vector env and a
benchmark run go on and lose nothing), timeouts, a service missing at start, a model swapped
behind the same name, and the ``genagent-serve`` command.

One Ray instance (2 CPUs) and one Serve instance serve every test of the module."""

from __future__ import annotations

import os

# Before Ray is imported: keep this test cluster on loopback addresses, and send no usage statistics.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import ray  # noqa: E402
import ray.cloudpickle  # noqa: E402
from ray import serve  # noqa: E402

from genagent_env.shapes.generator import ShapesGenerator  # noqa: E402
from genagent_env.tools.base import GenerationRequest  # noqa: E402
from genagent_env.tools.cache import GenerationCache  # noqa: E402
from genagent_env.tools.dispatch import generate_requests  # noqa: E402
from genagent_env.tools.registry import make_generator  # noqa: E402
from genagent_env.tools.remote import (  # noqa: E402
    HTTPGenerator,
    RemoteGenerator,
    RemoteServiceUnavailableError,
    RemoteTimeoutError,
    ServeGenerator,
)
from genagent_env.tools.serving import main, serve_generator, start_ray, tiny_sd_generator  # noqa: E402
from genagent_env.vector import GenAgentVectorEnv  # noqa: E402

# The generators below are defined here: replicas get them by value, not by importing this module.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

FAST = {"retries": 4, "backoff_s": 0.25, "max_backoff_s": 2.0}


class Crashing(ShapesGenerator):
    """ShapesWorld (medium), except that the call numbered ``folder/crash_at`` (counted over every
    replica in ``folder/calls``, one byte per call) kills its own replica's process mid-request."""

    def __init__(self, folder: str) -> None:
        super().__init__("medium")
        self.folder = Path(folder)

    def generate_outcomes(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        with (self.folder / "calls").open("ab") as calls:
            calls.write(b".")
            number = calls.tell()
        if number == int((self.folder / "crash_at").read_text()):
            os._exit(1)  # the replica dies with the request in flight
        return super().generate_outcomes(requests)


class Moody(ShapesGenerator):
    """ShapesWorld (medium), except that the prompt ``slow`` takes 5 s and ``fail`` fails alone."""

    def generate_outcomes(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        if any(request.prompt == "slow" for request in requests):
            time.sleep(5)
        images = super().generate_outcomes(requests)
        return [ValueError("fail is not drawable") if r.prompt == "fail" else i for r, i in zip(requests, images)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """Ray (2 CPUs, loopback only) and Serve's HTTP proxy on a free loopback port, for the module."""
    assert not ray.is_initialized()
    http_port = free_port()
    start_ray(num_cpus=2, port=http_port, log_to_driver=False)  # the replicas log each request: not here
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    try:
        yield http_port
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def shapes(port):
    served = serve_generator("shapes-medium", app="shapes", cpus_per_replica=0.25)
    yield served
    served.delete()


@pytest.fixture(scope="module")
def tiny(port):
    """The tiny diffusers pipeline: one replica, batches of up to 8 images, waiting up to 5 s for a batch
    to fill (the tests send 8 images at a time: a full batch runs at once)."""
    served = serve_generator("tiny-sd", app="tiny", cpus_per_replica=0.25, max_batch_size=8, batch_wait_timeout_s=5.0)
    yield served
    served.delete()


@pytest.fixture(scope="module")
def crashing(port, tmp_path_factory):
    """Two replicas of :class:`Crashing`; :func:`crash_at` arms it."""
    folder = tmp_path_factory.mktemp("crashing")
    (folder / "crash_at").write_text("0")
    served = serve_generator(Crashing, app="crashing", options={"folder": str(folder)}, replicas=2,
                             cpus_per_replica=0.25)
    yield served, folder
    served.delete()


def crash_at(served: Any, folder: Path, number: int) -> None:
    """Wait until both replicas run (one may be restarting after a crash), then make call ``number`` from now crash."""
    deadline = time.monotonic() + 120
    while serve.status().applications[served.app].deployments["GeneratorServer"].replica_states.get("RUNNING") != 2:
        assert time.monotonic() < deadline, "the crashed replica was not restarted"
        time.sleep(0.2)
    (folder / "calls").write_bytes(b"")
    (folder / "crash_at").write_text(str(number))


def calls_made(folder: Path) -> int:
    return len((folder / "calls").read_bytes())


def requests(prompt: str, seeds: Sequence[int], size: int | None = None) -> list[GenerationRequest]:
    return [GenerationRequest(prompt, seed, size, size) for seed in seeds]


def pixels(images: Sequence[Any]) -> list[np.ndarray]:
    return [np.asarray(image.convert("RGB")) for image in images]


def stats(served: Any) -> dict[str, int]:
    return served.handle.stats.remote().result(timeout_s=30)


def remote(served: Any, over: str, **options: Any) -> RemoteGenerator:
    """The remote tool for ``served`` over a Serve ``handle`` or over ``http``."""
    return ServeGenerator(served.app, **options) if over == "handle" else HTTPGenerator(served.url, **options)


def call(tool: str, prompt: str, seed: int) -> str:
    return f'<tool_call>{json.dumps({"name": tool, "arguments": {"prompt": prompt, "seed": seed}})}</tool_call>'


# ---------------------------------------------------------------------------------- the same images


def test_served_shapes_world_gives_the_local_images_over_a_handle_and_over_http(shapes):
    local = make_generator("shapes-medium")
    batch = requests("three red circles on the left and a blue star", range(4)) + requests("a green square", [7], 96)
    expected = pixels(local.generate(batch))
    for spec in (shapes.spec, shapes.url):
        tool = make_generator(spec)
        assert isinstance(tool, ServeGenerator if spec.startswith("serve:") else HTTPGenerator)
        assert (tool.name, tool.description, tool.parameters()) == (local.name, local.description, local.parameters())
        assert tool.cache_id() == f"remote:{local.cache_id()}"  # the model's identity, not the URL's
        got = pixels(tool.generate(batch))
        assert all(np.array_equal(a, b) for a, b in zip(got, expected)) and got[-1].shape == (96, 96, 3)


def test_served_tiny_diffusers_pipeline_gives_the_local_images(tiny):
    import torch

    local = tiny_sd_generator()
    batch = requests("a photo of 2 red cubes", [1, 2, 3, 4, 5]) + requests("a blue ball", [4, 6])
    batch += requests("a green ring", [0], 48)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the replica (1 CPU): float sums split over 2 threads may round a pixel otherwise
    try:
        expected = pixels(local.generate(batch))
    finally:
        torch.set_num_threads(threads)
    for spec in (tiny.spec, tiny.url):
        tool = make_generator(spec)
        assert tool.cache_id() == f"remote:{local.cache_id()}"
        got = pixels(tool.generate(batch))
        assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_the_env_and_the_vector_env_take_served_generators_by_name(shapes):
    env = gym.make("genagent_env:GenAgent-v0", generators=shapes.url, max_rounds=1)
    env.reset(seed=0, options={"prompt": "two red circles"})
    obs, *_ = env.step(call("shapes-medium", "Exactly 2 red circles.", 3))
    assert obs["text"].startswith("image_1 was generated by shapes-medium")
    local = gym.make("genagent_env:GenAgent-v0", generators="shapes-medium", max_rounds=1)
    local.reset(seed=0, options={"prompt": "two red circles"})
    expected, *_ = local.step(call("shapes-medium", "Exactly 2 red circles.", 3))
    assert np.array_equal(obs["image"], expected["image"])
    env.close()
    local.close()

    envs = GenAgentVectorEnv(3, generators={"painter": shapes.spec}, max_rounds=1, generation_cache=True)
    envs.reset(seed=0, options={"task_index": 0})
    observations, *_, infos = envs.step([call("painter", "a red circle", seed) for seed in (1, 2, 1)])
    assert all(text.startswith("image_1 was generated by painter") for text in observations["text"])
    assert infos["generation_cache"]["generator_calls"][0] == 1 and infos["generation_cache"]["hits"][0] == 1
    envs.close()


def test_a_request_the_generator_fails_is_its_own_error_through_the_service(port):
    served = serve_generator(Moody, app="moody-fail", cpus_per_replica=0.25)
    try:
        for spec in (served.spec, served.url):
            outcomes = make_generator(spec).generate_outcomes(requests("a red circle", [1]) + requests("fail", [2]))
            assert not isinstance(outcomes[0], Exception)
            assert isinstance(outcomes[1], Exception) and "ValueError: fail is not drawable" in str(outcomes[1])
        # The service keeps to its schema whoever calls it: an argument it does not list fails alone.
        outcomes = make_generator(served.url).generate_outcomes(
            [GenerationRequest("a red circle", 1, extra={"steps": 10**9}), *requests("a red circle", [2])])
        assert 'do not fit shapes-medium\'s schema: unknown argument "steps"' in str(outcomes[0])
        assert not isinstance(outcomes[1], Exception)
        with pytest.raises(urllib.error.HTTPError) as caught:  # a body that breaks the contract: HTTP 400
            urllib.request.urlopen(urllib.request.Request(served.url + "/generate", data=b'{"prompts": "x"}'))
        assert caught.value.code == 400 and "prompts must be a list" in caught.value.read().decode()
    finally:
        served.delete()


# ---------------------------------------------------------------------------------- batching


def test_a_vector_envs_requests_are_one_pipeline_call(tiny):
    envs = GenAgentVectorEnv(8, generators=tiny.spec, max_rounds=1, image_size=32)
    envs.reset(seed=0)
    before = stats(tiny)
    observations, *_ = envs.step([call("tiny-sd", f"a photo of {k} red cubes", k) for k in range(8)])
    after = stats(tiny)
    assert all(text.startswith("image_1 was generated by tiny-sd") for text in observations["text"])
    assert {key: after[key] - before[key] for key in ("calls", "requests", "generator_calls")} == {
        "calls": 1, "requests": 8, "generator_calls": 1}
    envs.close()


def test_concurrent_callers_are_merged_into_fewer_pipeline_calls(tiny):
    """Two vector envs of 4 (over a handle) and then 8 single envs (over HTTP, as 8 agent processes
    would) call at the same moment: the replica's batch queue runs their requests together."""
    barrier = threading.Barrier(2)
    vector_envs = [GenAgentVectorEnv(4, generators=tiny.spec, max_rounds=1, image_size=32) for _ in range(2)]
    texts: list[str] = []

    def play_vector(envs: GenAgentVectorEnv, offset: int) -> None:
        envs.reset(seed=offset)
        barrier.wait()
        observations, *_ = envs.step([call("tiny-sd", "a red cube", offset + k) for k in range(4)])
        texts.extend(observations["text"])

    before = stats(tiny)
    threads = [threading.Thread(target=play_vector, args=(envs, 10 * i)) for i, envs in enumerate(vector_envs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    after = stats(tiny)
    assert len(texts) == 8 and all(text.startswith("image_1 was generated") for text in texts)
    assert after["calls"] - before["calls"] == 2 and after["requests"] - before["requests"] == 8
    assert after["generator_calls"] - before["generator_calls"] == 1
    for envs in vector_envs:
        envs.close()

    barrier = threading.Barrier(8)
    singles = [gym.make("genagent_env:GenAgent-v0", generators=tiny.url, max_rounds=1, image_size=32) for _ in range(8)]
    texts.clear()

    def play_single(env: Any, seed: int) -> None:
        env.reset(seed=seed)
        barrier.wait()
        observation, *_ = env.step(call("tiny-sd", "a blue ball", 100 + seed))
        texts.append(observation["text"])

    before = stats(tiny)
    threads = [threading.Thread(target=play_single, args=(env, seed)) for seed, env in enumerate(singles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    after = stats(tiny)
    assert len(texts) == 8 and all(text.startswith("image_1 was generated") for text in texts)
    assert after["calls"] - before["calls"] == 8
    merged = after["generator_calls"] - before["generator_calls"]
    assert merged <= 2, f"8 concurrent calls ran as {merged} pipeline calls"
    for env in singles:
        env.close()


# ---------------------------------------------------------------------------------- failures


@pytest.mark.parametrize("over", ["handle", "http"])
def test_a_replica_killed_mid_run_is_retried_and_the_vector_env_goes_on(crashing, over):
    served, folder = crashing
    crash_at(served, folder, 2)
    envs = GenAgentVectorEnv(4, generators={"painter": remote(served, over, **FAST)}, max_rounds=2)
    envs.reset(seed=0)
    observations, *_ = envs.step([call("painter", f"{k + 1} red circles", k) for k in range(4)])
    assert all(text.startswith("image_1 was generated") for text in observations["text"])
    # The second call kills the replica that runs it; the call is retried on the other one.
    again = [f"<judge>wrong</judge>{call('painter', f'{k + 1} red circles', 9)}" for k in range(4)]
    observations, *_ = envs.step(again)
    assert calls_made(folder) == 3  # the call that crashed, then its retry
    assert all(text.startswith("image_2 was generated") for text in observations["text"]), observations["text"]
    observations, _, terminated, _, infos = envs.step(["<judge>ok</judge><answer>done</answer>"] * 4)
    assert terminated.all() and list(infos["round"]) == [2] * 4
    envs.close()


def test_a_benchmark_run_over_a_service_whose_replica_dies_mid_run_loses_nothing(crashing, tmp_path):
    from benchmarks.run import Args, run

    served, folder = crashing
    crash_at(served, folder, 2)
    grid = {"agents": ("passthrough",), "max_rounds": (1,), "seeds": 1, "limit": 9, "num_envs": 3,
            "quiet": True, "save_images": "none"}
    run(Args(generators=(served.url,), out=tmp_path / "remote", **grid))
    assert calls_made(folder) >= 3  # the second call crashed a replica, and was made again
    run(Args(generators=("shapes-medium",), out=tmp_path / "local", **grid))

    def records(folder: Path) -> dict[str, dict[str, Any]]:
        lines = (folder / "results.jsonl").read_text().splitlines()
        return {record["task_id"]: record for record in map(json.loads, lines)}

    remote, local = records(tmp_path / "remote"), records(tmp_path / "local")
    assert len(remote) == 9 and set(remote) == set(local)
    for task_id, record in remote.items():  # the crash was retried away: the same episodes as locally
        assert record["generator"] == served.url and record["failed_tool_calls"] == 0
        assert [r["seed"] for r in record["rounds"]] == [r["seed"] for r in local[task_id]["rounds"]]
        assert (record["passed"], record["score"]) == (local[task_id]["passed"], local[task_id]["score"])
    assert (tmp_path / "remote" / "report").is_dir()


def test_a_slow_service_times_out_per_request_and_the_episode_goes_on(port):
    # Batches of one, four at once: a slow request holds up no other.
    served = serve_generator(Moody, app="moody", cpus_per_replica=0.25, max_batch_size=1, max_concurrent_batches=4)
    try:
        for over in ("handle", "http"):
            tool = remote(served, over, timeout_s=1.0, retries=0)
            start = time.perf_counter()
            outcomes = tool.generate_outcomes(requests("slow", [1]))
            assert isinstance(outcomes[0], RemoteTimeoutError) and time.perf_counter() - start < 5

        # The env's own deadline (tool_timeout_s) holds for a remote tool too; the next call works.
        env = gym.make("genagent_env:GenAgent-v0", generators=served.url, max_rounds=1, tool_timeout_s=1.0)
        env.reset(seed=0, options={"prompt": "a red circle"})
        obs, _, terminated, _, info = env.step(call("shapes-medium", "slow", 1))
        assert "failed and made no image" in obs["text"] and "1 s" in obs["text"]
        assert not terminated and info["round"] == 0
        obs, *_ = env.step(call("shapes-medium", "a red circle", 2))
        assert obs["text"].startswith("image_1 was generated"), obs["text"]
        env.close()
    finally:
        served.delete()


def test_a_missing_service_is_named_at_construction_with_how_to_start_it(port, tmp_path):
    with pytest.raises(RemoteServiceUnavailableError) as caught:
        ServeGenerator("no-such-app", retries=0)
    message = str(caught.value)
    assert "serve:no-such-app" in message and "does not exist" in message and "genagent-serve" in message
    url = f"http://127.0.0.1:{port}/no-such-app"
    with pytest.raises(RemoteServiceUnavailableError) as caught:
        HTTPGenerator(url, retries=0)
    assert url in str(caught.value) and "HTTP 404" in str(caught.value) and "genagent-serve" in str(caught.value)
    from benchmarks.run import Args, run

    with pytest.raises(RemoteServiceUnavailableError, match="no-such-app"):
        run(Args(agents=("passthrough",), generators=("serve:no-such-app",), max_rounds=(1,), seeds=1, limit=1,
                 quiet=True, out=tmp_path / "run"))


def test_another_model_behind_the_same_name_is_never_served_from_the_cache(port):
    cache = GenerationCache()
    served = serve_generator("shapes-medium", app="swap", cpus_per_replica=0.25)
    try:
        old = HTTPGenerator(served.url, **FAST)
        batch = requests("a red circle", [5])
        (medium,) = generate_requests(old, batch, cache=cache)
        serve_generator("shapes-strong", app="swap", cpus_per_replica=0.25)  # redeployed under the same name
        new = HTTPGenerator(served.url, **FAST)
        assert new.cache_id() == f"remote:{make_generator('shapes-strong').cache_id()}" != old.cache_id()
        (strong,) = generate_requests(new, batch, cache=cache)
        assert cache.stats.misses == 2 and cache.stats.hits == 0
        assert np.array_equal(np.asarray(strong), np.asarray(make_generator("shapes-strong").generate(batch)[0]))
        assert not np.array_equal(np.asarray(strong), np.asarray(medium))
        with pytest.warns(RuntimeWarning, match="changed"):  # the old tool finds out from the answer
            (dropped,) = generate_requests(old, requests("a blue star", [1]), cache=cache)
        assert isinstance(dropped, Exception) and "changed while this call ran" in str(dropped)
        assert old.cache_id() == new.cache_id()
    finally:
        serve.delete("swap")


# ---------------------------------------------------------------------------------- speed and the command


def test_the_perf_table_times_the_served_pipeline_against_the_local_one(port, tmp_path):
    from benchmarks import perf

    args = perf.Args(worlds=("diffusers",), sizes=(32,), nums=(2,), served_nums=(2,), modes=("raw", "serve", "http"),
                     steps=1, seconds=0.3, repeats=1, out=tmp_path / "perf.jsonl")
    lines = perf.main(args)
    rows = {row["setting"]["mode"]: row for row in map(json.loads, args.out.read_text().splitlines())}
    assert set(rows) == {"raw", "serve", "http"} and all(row["images"] > 0 for row in rows.values())
    for mode in ("serve", "http"):
        ratio = rows[mode]["images_per_s"] / rows["raw"]["images_per_s"]
        (line,) = [line for line in lines if line.startswith("diffusers") and perf.MODE_NAMES[mode] in line]
        assert line.split()[-3] == f"{ratio:.2f}"  # the x limit column
        verdict = "PASS" if ratio >= args.target else "FAIL"
        assert f"target: diffusers 32x32 N=2 {perf.MODE_NAMES[mode]} / local limit = {ratio:.2f} (>= 0.8): {verdict}" \
            in lines
    assert not [app for app in serve.status().applications if app.startswith("perf-")]  # taken down after


def test_genagent_serve_deploys_by_name_and_refuses_gpus_it_does_not_have(port, capsys):
    served = main(["shapes-weak", "--app", "cli-shapes", "--replicas", "1", "--cpus-per-replica", "0.25",
                   "--max-batch-size", "4", "--option", "image_size=64", "--port", str(port), "--detach"])
    try:
        printed = capsys.readouterr().out
        assert f"generators='http://127.0.0.1:{port}/cli-shapes'" in printed and "serve:cli-shapes" in printed
        info = json.loads(urllib.request.urlopen(served.url + "/info", timeout=30).read())
        assert info["name"] == "shapes-weak" and info["settings"]["max_batch_size"] == 4
        image = make_generator(served.url).generate(requests("a red circle", [1]))[0]
        assert image.size == (64, 64)
    finally:
        served.delete()
    with pytest.raises(ValueError, match=r"need 2 GPUs; this Ray cluster has 0.*--gpus-per-replica 0"):
        main(["shapes-weak", "--app", "cli-gpu", "--replicas", "2", "--gpus-per-replica", "1", "--detach"])
