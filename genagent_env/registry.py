"""Name-based registries: ``generators="shapes-strong"``, ``scorer="shapes"``, ``suite="shapes-geneval"``.

A registry maps a name to a factory (a class or a function) that builds the object with keyword
arguments; installed packages add their own through an entry-point group
(``genagent_env.generators``, ``genagent_env.scorers``), discovered on first use. Factories are stored
as ``"module:attribute"`` strings where possible, so that naming a heavy generator in the registry does
not import its libraries until it is built.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """A name that is not registered (a generator, scorer, suite or agent).

    Both a ``KeyError`` (a failed lookup, what code that catches ``KeyError`` expects) and a
    ``ValueError`` (a bad argument value, like every other bad constructor argument). Its message
    says what is registered and suggests close names; unlike ``KeyError``'s, it is not quoted.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def unknown_name_error(kind: str, name: object, known: list[str]) -> UnknownNameError:
    """The error for an unknown ``name`` of ``kind``, naming what is registered and what is close."""
    close = difflib.get_close_matches(str(name), known, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}. Registered: {', '.join(known)}.{hint}")


def takes_no_arguments(function: Callable[..., Any]) -> bool:
    """Whether ``function`` can be called with no arguments (a factory rather than the thing itself);
    a builtin without a signature counts as a factory."""
    import inspect

    try:
        inspect.signature(function).bind()
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): call it as a factory
        return True
    return True


def load_attribute(path: str) -> Any:
    """Import ``"package.module:attribute"`` (the entry-point syntax)."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"expected 'module:attribute', got {path!r}")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


class Registry(Generic[T]):
    """Named factories of one kind of object (generators, scorers or task suites)."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._factories: dict[str, Callable[..., T] | str] = {}
        self._defaults: dict[str, dict[str, Any]] = {}
        self._discovered = entry_point_group is None

    def _discover(self) -> None:
        """Add the factories that installed packages declare in the entry-point group (once).

        An entry point's value is ``"module:attribute"``, the lazy form :meth:`register` takes, so
        discovering a plugin imports nothing until it is built. Names registered in code win.
        """
        if self._discovered:
            return
        self._discovered = True
        from importlib.metadata import entry_points

        for entry_point in entry_points(group=str(self.entry_point_group)):
            if entry_point.name not in self._factories:
                self._factories[entry_point.name] = entry_point.value
                self._defaults[entry_point.name] = {}

    def register(
        self, name: str, factory: Callable[..., T] | str, *, overwrite: bool = False, **defaults: Any
    ) -> None:
        """Register ``factory`` (a callable, or a lazy ``"module:attribute"`` path) under ``name``.

        ``defaults`` are keyword arguments passed to the factory unless :meth:`make` overrides them,
        which is how presets such as ``shapes-weak`` share one class.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._factories and not overwrite:
            raise ValueError(f"{self.kind} {name!r} is already registered (pass overwrite=True to replace it)")
        if not (callable(factory) or isinstance(factory, str)):
            raise TypeError(f"a {self.kind} factory must be callable or a 'module:attribute' string")
        self._factories[name] = factory
        self._defaults[name] = dict(defaults)

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._factories

    def factory(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name`` (imported if it was registered lazily); an
        unknown name raises :class:`UnknownNameError`."""
        if name not in self:
            raise unknown_name_error(self.kind, name, self.names())
        factory = self._factories[name]
        if isinstance(factory, str):
            factory = load_attribute(factory)
            self._factories[name] = factory
        return factory

    def make(self, name: str, **kwargs: Any) -> T:
        """Build the object registered under ``name``; an unknown name raises
        :class:`UnknownNameError` (a ``KeyError`` and a ``ValueError``)."""
        return self.factory(name)(**{**self._defaults[name], **kwargs})
