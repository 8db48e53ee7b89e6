"""Statements built once per shape, run many times with new values.

Building a job change (an `UPDATE ... RETURNING` in a CTE, joined to the `INSERT` of its event)
costs several times more CPU than sending it: SQLAlchemy makes a proxy of each of the ~30
returned columns for each CTE, then walks the whole tree for its cache key. The hot paths (submit,
claim, every progress step, completion) run a handful of shapes over and over with new values,
so each shape is built once, with every value as a named bind parameter, and later calls only
supply the values.

A shape is what the caller declares fixed (flags), the names of the values, and for each SQL
expression among them its structure: SQLAlchemy's cache key, which leaves bound values out.
The values are the plain values and the values bound inside the expressions, numbered in the
order the cache key lists them (the same structure always lists them in the same order).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter, ClauseElement
from sqlalchemy.sql.type_api import TypeEngine

__all__ = ["Parameters", "statement"]

_CACHE_LIMIT = 512
_cache: dict[Hashable, Any] = {}


def _binds(expression: ClauseElement) -> list[BindParameter[Any]]:
    return [e for e in visitors.iterate(expression) if isinstance(e, BindParameter)]


class Parameters:
    """One call's values: its shape (the cache key of the statement) and its bind values."""

    def __init__(self, *flags: Hashable) -> None:
        self.key: list[Hashable] = list(flags)
        self.values: dict[str, Any] = {}
        self.cacheable = True
        self._given: dict[str, Any] = {}
        self._binds: dict[str, list[BindParameter[Any]]] = {}

    def add(self, name: str, value: Any) -> None:
        """A plain value or a SQL expression, referred to as `name` when building."""
        self._given[name] = value
        if not isinstance(value, ClauseElement):
            self.key.append((name,))
            self.values[name] = value
            return
        cache_key = value._generate_cache_key()
        if cache_key is None:
            self.cacheable = False
            binds = _binds(value)
        else:
            self.key.append((name, cache_key.key))
            binds = list(cache_key.bindparams)
        self._binds[name] = binds
        for index, bind in enumerate(binds):
            self.values[f"{name}__{index}"] = bind.effective_value

    def bind(self, name: str, type_: TypeEngine[Any] | None = None) -> Any:
        """For building: value `name` as a named bind parameter, or its expression with the
        values inside it replaced by named bind parameters."""
        value = self._given[name]
        if not isinstance(value, ClauseElement):
            return bindparam(name, type_=type_)
        order = {id(b): index for index, b in enumerate(self._binds[name])}

        def named(element: Any, **kw: Any) -> Any:
            if isinstance(element, BindParameter) and id(element) in order:
                return bindparam(
                    f"{name}__{order[id(element)]}",
                    type_=element.type,
                    expanding=element.expanding,
                    literal_execute=element.literal_execute,
                )
            return None

        return visitors.replacement_traverse(value, {}, named)


def statement(parameters: Parameters, build: Callable[[Parameters], Any]) -> Any:
    """The statement for this shape: built by `build` the first time, then reused."""
    if not parameters.cacheable:
        return build(parameters)
    key = tuple(parameters.key)
    built = _cache.get(key)
    if built is None:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        built = _cache[key] = build(parameters)
    return built
