"""The method registry: every method's class and the options it offers, each declared once, in its own module.

A method module decorates its class with :func:`register_method` and lists its keyword arguments that a
user may set as :class:`Option` s in the class attribute ``options``. From there the command line adds
the flags (``--NAME``), the pipeline passes their values, the fingerprint counts them (and the contents of
an option that names a file) and ``auto`` reads the class's ``auto_stop``/``auto_settings``: adding a
method touches no other file. Every module of this package is imported by ``methods/__init__.py``, and
methods of other packages register through the ``aseqdip.methods`` entry-point group (:func:`load_plugins`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import UserInputError
from ..fingerprint import add_input_option
from .base import DIPMethod

ENTRY_POINT_GROUP = "aseqdip.methods"
METHODS: dict[str, type[Any]] = {}  # name -> class, in registration order


@dataclass(frozen=True)
class Option:
    """A keyword argument of a method as the command line offers it: ``--NAME`` (underscores as dashes).

    ``type`` parses the flag's text (None: a switch, ``--NAME`` sets True). ``flag`` names the flag when it is
    not ``--NAME`` (ES-DIP's ``window`` is ``--es-window``, shared with the wmv rule). ``file``: the value names
    an input file or folder, whose contents (not its path) count in a run's fingerprint. Every option
    defaults to None on the command line, so the method's own default applies.
    """

    name: str
    type: Callable[[str], Any] | None = float
    help: str = ""
    choices: tuple[str, ...] | None = None
    flag: str = ""
    file: bool = False

    @property
    def option_string(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        """The attribute of the parsed command line that holds the value."""
        return self.option_string[2:].replace("-", "_")


def register_method(cls: type[Any]) -> type[Any]:
    """Class decorator: ``cls`` becomes ``--method cls.name``; its ``options`` become flags."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or name == DIPMethod.name:
        raise ValueError(f"{cls.__qualname__} needs a class attribute name (the --method value)")
    known = METHODS.get(name)
    if known is not None and known is not cls and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"a method named {name!r} is registered already ({known.__module__}.{known.__qualname__})")
    accepted = method_parameters(cls)
    for option in getattr(cls, "options", ()):
        if option.name not in accepted:
            raise ValueError(f"{cls.__qualname__} declares option {option.name!r}, which its __init__ does not take")
    for option in getattr(cls, "options", ()):
        if option.file:
            add_input_option(option.dest)
    METHODS[name] = cls
    return cls


def unregister_method(name: str) -> None:
    """Remove a method registered by :func:`register_method` (tests and interactive sessions)."""
    METHODS.pop(name, None)


_plugins_loaded = False


def load_plugins() -> None:
    """Import the methods other installed packages register under the ``aseqdip.methods`` entry points (once)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        entry.load()  # the module's @register_method does the rest


def method_options() -> list[Option]:
    """The options of every registered method, each flag once (its first declaration), in registration order."""
    load_plugins()
    seen: dict[str, Option] = {}
    for cls in METHODS.values():
        for option in getattr(cls, "options", ()):
            seen.setdefault(option.option_string, option)
    return list(seen.values())


def flag_names() -> dict[str, str]:
    """A method option's keyword -> its flag's name without dashes, where they differ (``window`` -> ``es_window``)."""
    return {option.name: option.dest for option in method_options() if option.name != option.dest}


def method_parameters(cls: type[Any]) -> set[str]:
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
                 warn: Any = None, flags: dict[str, str] | None = None) -> Any:
    """Instantiate method ``name``: its own defaults, then ``defaults`` (the task's), then ``options``.

    Options set to None are ignored; an option the method does not take is reported through ``warn``,
    named by ``flags[key]`` when given (the command line's flag), else ``--key``.
    """
    load_plugins()
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
                flag = (flags or {}).get(key, "--" + key.replace("_", "-"))
                warn(f"option {flag} does not apply to method {name} and is ignored")
            continue
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
