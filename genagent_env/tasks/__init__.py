"""Tasks: the GenEval++ schema, suites, file loaders, and the shared wording (:mod:`.wording`)."""

from genagent_env.tasks.loaders import load_tasks
from genagent_env.tasks.schema import GENEVAL_PP_TAGS, normalize_task
from genagent_env.tasks.suites import SUITES, register_suite, resolve_suite

__all__ = ["GENEVAL_PP_TAGS", "SUITES", "load_tasks", "normalize_task", "register_suite", "resolve_suite"]
