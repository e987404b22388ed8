"""Building a method by name from user options, with the task's defaults underneath."""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import UserInputError
from .base import DIPMethod


def method_parameters(cls: type[DIPMethod]) -> set[str]:
    """Keyword arguments a method accepts (its own and DIPMethod's)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        names |= {p for p in inspect.signature(klass.__init__).parameters if p not in ("self", "args", "kwargs")}
        if klass is DIPMethod:
            break
    return names


def build_method(name: str, options: dict[str, Any], defaults: dict[str, Any] | None = None,
                 warn: Any = None) -> DIPMethod:
    """Instantiate method ``name``: its own defaults, then ``defaults`` (the task's), then ``options``.

    Options set to None are ignored; an option the method does not take is reported through ``warn``.
    """
    from . import METHODS

    if name not in METHODS:
        raise UserInputError(f"unknown method {name!r}; choose from {', '.join(sorted(METHODS))}")
    cls = METHODS[name]
    accepted = method_parameters(cls)
    kwargs = {k: v for k, v in (defaults or {}).items() if k in accepted}
    for key, value in options.items():
        if value is None:
            continue
        if key not in accepted:
            if warn is not None:
                warn(f"option --{key.replace('_', '-')} does not apply to method {name} and is ignored")
            continue
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
