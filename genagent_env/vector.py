"""``GenAgentVectorEnv``: N GenAgent episodes stepped together, with batched generation and scoring."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from genagent_env.config import EnvConfig
from genagent_env.env import GenAgentEnv, check_render_mode
from genagent_env.episode import Episode
from genagent_env.stepping import step_episodes
from genagent_env.tools.cache import GenerationCache
from genagent_env.tools.dispatch import check_batch_size


class Skip:
    """The type of :data:`SKIP`."""

    _instance: Skip | None = None

    def __new__(cls) -> Skip:  # one instance, so ``action is SKIP`` holds after copies
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SKIP"

    def __reduce__(self) -> str:
        return "SKIP"


#: The action that leaves a sub-environment of :class:`GenAgentVectorEnv` alone for one step.
SKIP = Skip()


class GenAgentVectorEnv(VectorEnv):
    """``num_envs`` GenAgent episodes stepped together, so that their tool calls and scoring are batched.

    Gymnasium's ``SyncVectorEnv`` and ``AsyncVectorEnv`` step sub-environments one at a time, so a
    generator sees batches of one. Here every step gathers the sub-environments' tool calls into
    one ``generate`` call per tool, their new images into one ``score`` call per scorer, and the
    comparisons of episodes that end into one ``compare`` call per comparator (each split into
    batches of at most ``batch_size`` / ``score_batch_size``). Sub-environments may sit at
    different turns: one that answers or breaks the protocol this step simply has no request.

    Results are the same as stepping the sub-environments one by one with the same seeds (each
    draws its seeds from its own ``np_random``; generators take per-request seeds). A shared
    :class:`~genagent_env.tools.cache.GenerationCache` makes identical requests (tool, prompt,
    seed, arguments) once: the 8 rollouts of a GRPO group that make the same call cost one
    generation. A call is the same when the agent writes the seed, or when the seed the env draws
    is the same: ``reset(seed=[s] * N, ...)`` or ``set_state([snapshot] * N)`` start every
    sub-environment from one random state (``reset(seed=s)`` gives them ``s, s+1, ...``, so their
    drawn seeds differ).

    Create it with ``gym.make_vec("GenAgent-v0", num_envs=N, vectorization_mode="vector_entry_point")``
    (the registered variants' settings apply) or directly, ``GenAgentVectorEnv(N, **env_kwargs)``.

    ## Spaces

    ``single_observation_space`` and ``single_action_space`` are one ``GenAgent-v0``'s;
    ``observation_space`` is their batch, as Gymnasium's own vector envs make it:
    ``{"text": tuple of N str, "image": uint8 array (N, H, W, 3)}``; actions are a sequence of
    N strings.

    ## Autoreset

    ``autoreset_mode`` as in Gymnasium 1.x: ``"next_step"`` (default: the step after an episode ends
    resets that sub-environment, ignores its action and returns reward 0), ``"same_step"`` (the
    ending step resets at once and puts the last observation and info in ``info["final_obs"]`` and
    ``info["final_info"]``), or ``"disabled"`` (reset ended sub-environments yourself with
    ``reset(options={"reset_mask": mask})``).

    ## Skipping sub-environments

    The action :data:`SKIP` leaves that sub-environment alone this step: its episode neither moves
    nor resets (even one that ended, whatever the autoreset mode), its reward is 0, its
    ``terminated``/``truncated`` are False and its info is masked out (``info["_key"][i]`` False).
    :func:`agents.run_episodes` uses it to let finished episodes wait for the others, so the vector
    env stays usable afterwards. (``None`` or any other non-string is a format violation, as in
    ``GenAgent-v0``: an agent's bug must not silently stall its episode.)

    ## Info

    Gymnasium's vector format: ``info[key][i]`` with the mask ``info["_" + key]``. A key whose
    values differ in type between sub-environments (``final_image`` is an int or ``None``) is an
    object array. Each
    sub-environment's info is what ``GenAgent-v0`` gives (``messages``, ``round``,
    ``reward_components`` at the end, ...), plus ``generation_cache`` (the shared cache's
    ``hits``, ``misses``, ``disk_hits``, ``disk_errors``, ``generator_calls``, ``evictions``, ``entries``,
    ``bytes``) when there is a cache.

    ## Arguments

    - ``num_envs``: how many episodes run together.
    - ``batch_size``: the most tool calls in one ``generate`` call (``None``: all of a step's calls
      to that tool). A generator may split further (``DiffusersGenerator.max_batch_size``).
    - ``score_batch_size``: the most images in one ``score`` or ``compare`` call (``None``: all).
    - ``generation_cache``: ``True`` (default): one in-memory cache shared by all sub-environments;
      ``False``: none; a dict of :class:`GenerationCache` arguments (``max_entries``,
      ``max_bytes``, ``directory``); or a ``GenerationCache``.
    - ``autoreset_mode``: see above.
    - every other keyword is a ``GenAgentEnv`` argument (``suite``, ``generators``, ``scorer``,
      ``max_rounds``, ``image_size``, ...). Tools, scorer, comparator and suite are built once and
      shared by the sub-environments. ``tool_timeout_s`` is per request: a batch of n requests
      gets n times as long. ``max_episode_steps`` (what ``gym.make_vec`` passes) sets
      ``max_turns``.

    ## Failures

    A tool call that fails (an exception, a timeout, a NaN image) is an error message to its own
    sub-environment; the others in the batch get their images (a batch that fails as a whole is
    retried one request at a time). A scorer or comparator that raises makes ``step`` raise with
    every sub-environment as it was before the step, so the step can be retried.
    """

    def __init__(
        self,
        num_envs: int = 1,
        *,
        batch_size: int | None = None,
        score_batch_size: int | None = None,
        generation_cache: GenerationCache | bool | Mapping[str, Any] | None = True,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        **env_kwargs: Any,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        check_batch_size("batch_size", batch_size)
        check_batch_size("score_batch_size", score_batch_size)
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        max_episode_steps = env_kwargs.pop("max_episode_steps", None)
        if max_episode_steps is not None:  # what gym.make_vec passes; GenAgentEnv's own limit is max_turns
            if env_kwargs.get("max_turns") not in (None, max_episode_steps):
                raise ValueError(
                    f"max_episode_steps={max_episode_steps} and max_turns={env_kwargs['max_turns']} disagree; pass one"
                )
            env_kwargs["max_turns"] = max_episode_steps

        render_mode = env_kwargs.pop("render_mode", None)
        check_render_mode(render_mode, GenAgentEnv.metadata["render_modes"])
        #: The configuration every sub-environment shares (tools, scorer, suite and cache built once).
        self.config = EnvConfig.build(generation_cache=generation_cache, **env_kwargs)
        self.envs: list[GenAgentEnv] = [GenAgentEnv.from_config(self.config, render_mode) for _ in range(int(num_envs))]
        self.num_envs = int(num_envs)
        self.batch_size = batch_size
        self.score_batch_size = score_batch_size
        self.generation_cache: GenerationCache | None = self.config.generation_cache
        first = self.envs[0]

        self.metadata = {**first.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = first.render_mode
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        empty = create_empty_array(self.single_observation_space, n=self.num_envs, fn=np.zeros)
        assert isinstance(empty, dict)  # the observation space is a Dict
        self._observations: dict[str, Any] = empty
        self._env_obs: list[Any] = [None] * self.num_envs
        self._rewards = np.zeros(self.num_envs, dtype=np.float64)
        self._terminations = np.zeros(self.num_envs, dtype=np.bool_)
        self._truncations = np.zeros(self.num_envs, dtype=np.bool_)
        self._autoreset_envs = np.zeros(self.num_envs, dtype=np.bool_)
        self._needs_reset = True

    # ------------------------------------------------------------------ reset

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset the sub-environments.

        Args:
            seed: ``None`` (fresh entropy), an int (sub-environment i gets ``seed + i``), or one
                seed per sub-environment.
            options: One dict for all sub-environments (``{"task_index": 3}`` puts every one on
                task 3, as a GRPO group wants), or one dict (or ``None``) per sub-environment. The
                key ``"reset_mask"`` (a bool array of shape ``(num_envs,)``) resets only those
                sub-environments; it is not passed on.
        """
        if seed is None or isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        elif isinstance(seed, bool):  # not an int seed here, and not a sequence either
            raise TypeError(f"seed must be an int, one seed per sub-environment or None, got {seed!r}")
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for num_envs={self.num_envs}")
        mask = np.ones(self.num_envs, dtype=np.bool_)
        if options is None or isinstance(options, Mapping):
            shared = dict(options or {})
            if "reset_mask" in shared:
                mask = _check_mask(shared.pop("reset_mask"), self.num_envs)
            per_env: list[Mapping[str, Any] | None] = [shared] * self.num_envs
        else:
            per_env = list(options)
            if len(per_env) != self.num_envs:
                raise ValueError(f"got {len(per_env)} option dicts for num_envs={self.num_envs}")
        if self._needs_reset and not mask.all():
            raise RuntimeError("the first reset must reset every sub-environment (no reset_mask)")
        # Check everything before resetting anything: a bad seed or option loses no episode.
        for i in np.flatnonzero(mask):
            value = seeds[i]
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0
            ):
                raise ValueError(f"seed {i} must be a non-negative integer or None, got {value!r}")
            seeds[i] = None if value is None else int(value)
            if per_env[i]:
                self.config.check_reset_options(per_env[i])

        infos: dict[str, Any] = {}
        for i in np.flatnonzero(mask):
            self._env_obs[i], info = self.envs[i].reset(seed=seeds[i], options=per_env[i])
            infos = add_info(infos, info, int(i), self.num_envs)
        self._terminations[mask] = False
        self._truncations[mask] = False
        self._autoreset_envs[mask] = False
        self._needs_reset = False
        self._batch_observations()
        return copy.deepcopy(self._observations), infos

    # ------------------------------------------------------------------- step

    def step(
        self, actions: Sequence[str | Skip]
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-environment with its action (:data:`SKIP`: leave it alone this step); tool
        calls and scoring are batched."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        if isinstance(actions, str) or not isinstance(actions, (Sequence, np.ndarray)):
            raise ValueError(f"actions must be a sequence of {self.num_envs} strings, got {type(actions).__name__}")
        actions = list(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"got {len(actions)} actions for num_envs={self.num_envs}")
        acting = [i for i in range(self.num_envs) if actions[i] is not SKIP]
        if self.autoreset_mode == AutoresetMode.DISABLED and self._autoreset_envs[acting].any():
            finished = [i for i in acting if self._autoreset_envs[i]]
            raise RuntimeError(
                f"sub-environments {finished} have ended and autoreset is disabled; "
                "reset them with reset(options={'reset_mask': mask}) or pass SKIP as their action"
            )

        stepping = [i for i in acting if not self._autoreset_envs[i]]
        results = step_episodes(
            [self._episode_of(i) for i in stepping],
            [actions[i] for i in stepping],
            batch_size=self.batch_size,
            score_batch_size=self.score_batch_size,
        )
        self._rewards[:] = 0.0
        self._terminations[:] = False
        self._truncations[:] = False
        env_infos: dict[int, dict[str, Any]] = {}
        infos: dict[str, Any] = {}
        for i, (obs, reward, terminated, truncated, info) in zip(stepping, results):
            self._env_obs[i], env_infos[i] = obs, info
            self._rewards[i], self._terminations[i], self._truncations[i] = reward, terminated, truncated
            if self.autoreset_mode == AutoresetMode.SAME_STEP and (terminated or truncated):
                infos = add_info(infos, {"final_obs": obs, "final_info": info}, i, self.num_envs)
                self._env_obs[i], env_infos[i] = self.envs[i].reset()
        for i in acting:
            if self._autoreset_envs[i]:  # NEXT_STEP: this step is the reset
                self._env_obs[i], env_infos[i] = self.envs[i].reset()
        for i in sorted(env_infos):
            infos = add_info(infos, env_infos[i], i, self.num_envs)

        self._batch_observations()
        ended = np.logical_or(self._terminations, self._truncations)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            self._autoreset_envs[:] = False
        else:
            self._autoreset_envs[acting] = ended[acting]
        return (
            copy.deepcopy(self._observations),
            np.copy(self._rewards),
            np.copy(self._terminations),
            np.copy(self._truncations),
            infos,
        )

    def _batch_observations(self) -> None:
        """Put the sub-environments' observations into ``_observations`` (in place where Gymnasium can)."""
        batched = concatenate(self.single_observation_space, self._env_obs, self._observations)
        assert isinstance(batched, dict)  # the observation space is a Dict
        self._observations = batched

    def _episode_of(self, i: int) -> Episode:
        episode = self.envs[i].episode
        assert episode is not None
        return episode

    # ---------------------------------------------------------------- helpers

    def render(self) -> tuple[Any, ...]:
        """Each sub-environment's ``render()``."""
        return tuple(env.render() for env in self.envs)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call a method (or read an attribute) of every sub-environment, e.g. ``call("get_state")``."""
        results = []
        for env in self.envs:
            attribute = getattr(env, name)
            results.append(attribute(*args, **kwargs) if callable(attribute) else attribute)
        return tuple(results)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """An attribute of every sub-environment."""
        return tuple(getattr(env, name) for env in self.envs)

    def set_attr(self, name: str, values: Any) -> None:
        """Set an attribute of every sub-environment: one value per sub-environment (a list or
        tuple), or one value for all."""
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"got {len(values)} values for num_envs={self.num_envs}")
        for env, value in zip(self.envs, values):
            setattr(env, name, value)

    def get_state(self) -> list[dict[str, Any]]:
        """Every sub-environment's :meth:`GenAgentEnv.get_state`, plus the autoreset flags."""
        return [
            {**env.get_state(), "autoreset": bool(flag)} for env, flag in zip(self.envs, self._autoreset_envs)
        ]

    def set_state(self, states: Sequence[Mapping[str, Any]]) -> None:
        """Restore what :meth:`get_state` returned (one snapshot may be given to many sub-environments
        by repeating it: ``set_state([snapshot] * N)`` branches one state N ways)."""
        states = list(states)
        if len(states) != self.num_envs:
            raise ValueError(f"got {len(states)} states for num_envs={self.num_envs}")
        for i, state in enumerate(states):  # check them all before restoring any
            try:
                GenAgentEnv.check_state(state)
            except ValueError:
                raise ValueError(f"states[{i}] is not a snapshot from get_state()") from None
        for i, (env, state) in enumerate(zip(self.envs, states)):
            env.set_state(state)
            episode = self._episode_of(i)
            self._autoreset_envs[i] = bool(state.get("autoreset", False)) or episode.done
            self._env_obs[i] = episode.observation()
        self._needs_reset = False
        self._batch_observations()

    def close_extras(self, **kwargs: Any) -> None:
        self.config.close()

    def __repr__(self) -> str:
        return f"GenAgentVectorEnv(num_envs={self.num_envs}, tools={list(self.envs[0].tools)})"


_AUTORESET_NAMES = {
    "next_step": AutoresetMode.NEXT_STEP,
    "same_step": AutoresetMode.SAME_STEP,
    "disabled": AutoresetMode.DISABLED,
}


def _autoreset_mode(value: Any) -> AutoresetMode:
    """An ``AutoresetMode``, its value (``"NextStep"``) or its name (``"next_step"``)."""
    if isinstance(value, AutoresetMode):
        return value
    if isinstance(value, str):
        key = value.strip().lower().replace("-", "_")
        if key in _AUTORESET_NAMES:
            return _AUTORESET_NAMES[key]
        for mode in AutoresetMode:
            if value == mode.value:
                return mode
    names = ", ".join(f"{name!r}" for name in _AUTORESET_NAMES)
    raise ValueError(f"autoreset_mode must be one of {names} (or a gymnasium AutoresetMode), got {value!r}")


def add_info(infos: dict[str, Any], info: Mapping[str, Any], index: int, num_envs: int) -> dict[str, Any]:
    """Add sub-environment ``index``'s ``info`` to the vector ``infos`` (Gymnasium's format: an
    array per key and a bool mask ``"_" + key``; dicts nest). Unlike Gymnasium's own merge, a value
    whose type differs from the others' (``None`` beside ints, a float beside ints) turns the key's
    array into an object array instead of raising or being silently cast."""
    for key, value in info.items():
        if isinstance(value, dict) and key != "final_obs":
            array: Any = add_info(infos.get(key, {}), value, index, num_envs)
        else:
            array = infos.get(key)
            if array is None:
                array = _empty_like(value, num_envs) if key != "final_obs" else np.full(num_envs, None, dtype=object)
            elif array.dtype != object and not _fits(array, value):
                array = array.astype(object)
            array[index] = value
        mask = infos.get(f"_{key}")
        if mask is None:
            mask = np.zeros(num_envs, dtype=np.bool_)
        mask[index] = True
        infos[key], infos[f"_{key}"] = array, mask
    return infos


def unbatch_info(infos: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Sub-environment ``index``'s info out of the vector ``infos`` (the inverse of
    :func:`add_info`): the keys whose mask is set, with numbers as Python scalars."""
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_") or not infos[f"_{key}"][index]:
            continue
        if isinstance(value, dict):
            out[key] = unbatch_info(value, index)
        else:
            item = value[index]
            out[key] = item.item() if isinstance(item, np.generic) else item
    return out


def _empty_like(value: Any, num_envs: int) -> np.ndarray:
    if type(value) in (int, float, bool) or isinstance(value, np.number):
        return np.zeros(num_envs, dtype=type(value))
    if isinstance(value, np.ndarray):
        return np.zeros((num_envs, *value.shape), dtype=value.dtype)
    return np.full(num_envs, None, dtype=object)


def _fits(array: np.ndarray, value: Any) -> bool:
    """Whether ``value`` goes into ``array`` (made for another sub-environment's value) unchanged."""
    if isinstance(value, np.ndarray):
        return value.shape == array.shape[1:] and value.dtype == array.dtype
    return (
        (type(value) in (int, float, bool) or isinstance(value, np.number)) and np.asarray(value).dtype == array.dtype
    )


def _check_mask(mask: Any, num_envs: int) -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (num_envs,):
        raise ValueError(f"options['reset_mask'] must be a bool numpy array of shape ({num_envs},), got {mask!r}")
    if not mask.any():
        raise ValueError("options['reset_mask'] must reset at least one sub-environment")
    return mask


__all__ = ["SKIP", "GenAgentVectorEnv", "Skip", "add_info", "unbatch_info"]
