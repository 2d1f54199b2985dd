"""Argument checks shared by the constructors: each error names the argument and what is allowed.

A bad value must fail where it is passed (``gym.make``), not steps or episodes later, and the
message must survive any value: :func:`short_repr` never raises (``repr(10**5000)`` does) and
never returns a megabyte.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters; a ``repr`` that raises (``10**5000``, a
    broken ``__repr__``) gives ``<type object>`` instead."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - any object may be passed; describing it must not fail
        return f"<{type(value).__name__} object>"
    if not isinstance(text, str):
        return f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[:limit] + "..."


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool; only ``True``/``False`` (or numpy's) pass: ``"no"`` or ``1`` raise
    ``ValueError``, because a truthy string silently meaning True is the bug this prevents."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {short_repr(value)}")
    return bool(value)


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python's or numpy's), ``bool`` excluded."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, low: int, high: int, why: str = "") -> int:
    """``value`` as an int in ``[low, high]``, or ``ValueError`` naming ``name``, the bounds and
    ``why`` (a reason for the bounds, appended to the message)."""
    if not is_int(value) or not low <= value <= high:
        reason = f" ({why})" if why else ""
        raise ValueError(f"{name} must be an integer in [{low}, {high}]{reason}, got {short_repr(value)}")
    return int(value)


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number (int or float, Python's or numpy's), ``bool`` excluded."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


__all__ = ["check_bool", "check_int", "is_int", "is_real", "short_repr"]
