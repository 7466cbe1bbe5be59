"""HeaderMap: the case-insensitive header mapping a handler sees (``request.headers``).

It behaves as ``requests.structures.CaseInsensitiveDict`` did here before
(a MutableMapping; lookups, ``in`` and ``del`` ignore case; iteration and
``repr`` keep the sender's spelling; ``==`` compares case-insensitively with
any mapping; ``lower_items()`` and ``copy()``), but costs a fraction of it per
request: it is built with one dict comprehension instead of a ``__setitem__``
call per header (``MutableMapping.update``), and ``get``/``in``/``[]`` are
one dict lookup without going through the ABC's generic methods. Profiles put
``CaseInsensitiveDict`` construction at several per cent of the listener's CPU
for a small request.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, ItemsView, Mapping, MutableMapping, Optional, Tuple, Union

__all__ = ["HeaderMap"]

HeaderSource = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]


class HeaderMap(MutableMapping[str, str]):
    """Headers by name, any case: ``headers["content-type"] == headers["Content-Type"]``."""

    __slots__ = ("_store",)

    def __init__(self, data: HeaderSource = None, **kwargs: str) -> None:
        self._store: Dict[str, Tuple[str, str]]
        if isinstance(data, HeaderMap):
            self._store = dict(data._store)
        # type() first: a dict (what a parsed message carries) skips typing.Mapping's isinstance
        elif type(data) is dict or isinstance(data, Mapping):
            self._store = {key.lower(): (key, value) for key, value in data.items()}
        else:
            self._store = {key.lower(): (key, value) for key, value in (data or ())}
        if kwargs:
            self._store.update((key.lower(), (key, value)) for key, value in kwargs.items())

    def __getitem__(self, key: str) -> str:
        return self._store[key.lower()][1]

    def __setitem__(self, key: str, value: str) -> None:
        self._store[key.lower()] = (key, value)

    def __delitem__(self, key: str) -> None:
        del self._store[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._store.values())

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._store

    def get(self, key: str, default: Any = None) -> Any:
        found = self._store.get(key.lower()) if isinstance(key, str) else None
        return default if found is None else found[1]

    def items(self) -> "ItemsView[str, str]":
        """``(name, value)`` pairs, names as the sender spelled them."""
        return _Items(self)

    def lower_items(self) -> Iterator[Tuple[str, str]]:
        """``(lowercase name, value)`` pairs."""
        return ((lower, pair[1]) for lower, pair in self._store.items())

    def copy(self) -> "HeaderMap":
        return HeaderMap(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HeaderMap):
            theirs: Optional[Dict[str, str]] = dict(other.lower_items())
        elif isinstance(other, Mapping):
            theirs = {str(key).lower(): value for key, value in other.items()}
        else:
            return NotImplemented
        return dict(self.lower_items()) == theirs

    __hash__ = None  # type: ignore[assignment]  # mutable, as dict

    def __repr__(self) -> str:
        return str(dict(self._store.values()))


class _Items(ItemsView):  # type: ignore[type-arg]
    """``HeaderMap.items()``: a live view as a dict's, iterated straight off the store."""

    __slots__ = ()

    def __iter__(self) -> Iterator[Tuple[str, str]]:
        return iter(self._mapping._store.values())  # type: ignore[attr-defined]
