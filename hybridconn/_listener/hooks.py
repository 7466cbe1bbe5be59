"""The listener's callbacks as one small value, and the descriptor that fills it.

``@listener.on_request`` and ``listener.on_request = f`` both store ``f`` in
the listener's :class:`Hooks`; every part that calls a callback is handed that
same object and reads it live, so a handler registered after ``open()`` is
used from the next request on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Union, overload

if TYPE_CHECKING:  # pragma: no cover
    from ..connection import HybridConnection
    from ..relayed import RelayedRequest, RelayedResponse
    from ..relayed import ResponseRecord
    from .accepting import ConnectionRequest

__all__ = ["Hooks", "Hook", "BoundHook", "HOOK_NAMES"]

log = logging.getLogger(__name__)

#: ``on_request(request) -> RelayedResponse``, run in a pool thread.
RequestHandler = Callable[["RelayedRequest"], "RelayedResponse"]
#: ``on_connection(conn)``, run in a pool thread for as long as the socket is open.
ConnectionHandler = Callable[["HybridConnection"], None]
#: ``on_accept(request) -> True | False | status | (status, description)``.
AcceptGate = Callable[["ConnectionRequest"], Any]
#: ``on_response(record)``, run in the thread that wrote the response.
ResponseCallback = Callable[["ResponseRecord"], None]

#: ``on_message(conn, message)``, run in a pool thread for each message of a multiplexed WebSocket.
MessageHandler = Callable[["HybridConnection", Union[str, bytes]], None]

HOOK_NAMES = ("on_request", "on_connection", "on_accept", "on_online", "on_offline", "on_connecting", "on_response",
              "on_message", "on_open", "on_close")


class Hooks:
    """The callbacks of one listener; None where none is registered.

    :ivar on_request: ``(RelayedRequest) -> RelayedResponse``: serves an HTTP request (501 without one).
    :ivar on_connection: ``(HybridConnection) -> None``: serves an accepted WebSocket until it closes
        (without one, accepted sockets wait for ``accept_connection()``).
    :ivar on_accept: ``(ConnectionRequest) -> decision``: accepts or rejects a WebSocket before it is accepted.
    :ivar on_online: ``() -> None``: the control channel is up (after every reconnect too).
    :ivar on_offline: ``(error or None) -> None``: the control channel is down (None: closed by us).
    :ivar on_connecting: ``() -> None``: a connect attempt starts.
    :ivar on_response: ``(ResponseRecord) -> None``: an HTTP response went out (or failed to), for
        access logs and metrics; the listener's own answers (503, 413, 500) included.
    :ivar on_message: ``(HybridConnection, str | bytes) -> None``: with it set, accepted WebSockets are
        multiplexed (one reader thread for all; see :mod:`.multiplex`) and each message is handled in a
        pool thread, a connection's messages one at a time, in order; it wins over ``on_connection``.
    :ivar on_open: ``(HybridConnection) -> None``: a multiplexed WebSocket was accepted (before its messages).
    :ivar on_close: ``(HybridConnection) -> None``: a multiplexed WebSocket closed (after its messages;
        ``close_code`` says how). Not called for the sockets the listener's own close() ends.
    """

    __slots__ = HOOK_NAMES
    # Declared for type checkers: __slots__ holds the values.
    on_request: Optional[RequestHandler]
    on_connection: Optional[ConnectionHandler]
    on_accept: Optional[AcceptGate]
    on_online: Optional[Callable[[], None]]
    on_offline: Optional[Callable[[Optional[BaseException]], None]]
    on_connecting: Optional[Callable[[], None]]
    on_response: Optional[ResponseCallback]
    on_message: Optional[MessageHandler]
    on_open: Optional[ConnectionHandler]
    on_close: Optional[ConnectionHandler]

    def __init__(self) -> None:
        for name in HOOK_NAMES:
            setattr(self, name, None)

    def notify(self, name: str, *args: Any) -> None:
        """Call a lifecycle callback; its failure is logged, never raised into the listener."""
        handler = getattr(self, name)
        if handler is None:
            return
        try:
            handler(*args)
        except Exception:  # noqa: BLE001 - a callback must never break the listener
            log.exception("%s callback failed", name)

    def __repr__(self) -> str:
        set_names = [name for name in HOOK_NAMES if getattr(self, name) is not None]
        return f"<Hooks {', '.join(set_names) or 'none'}>"


class HasHooks(Protocol):
    """What :class:`Hook` needs of its owner: a ``hooks`` attribute."""

    hooks: Hooks


class Hook:
    """A callback slot usable as a decorator (``@listener.on_request``) or assigned (``listener.on_request = f``)."""

    def __init__(self, doc: str = "") -> None:
        self.__doc__ = doc
        self.name: str = ""

    def __set_name__(self, owner: type, name: str) -> None:
        if name not in HOOK_NAMES:
            raise TypeError(f"{name} is not a listener hook")
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> "Hook": ...

    @overload
    def __get__(self, obj: HasHooks, owner: type) -> "BoundHook": ...

    def __get__(self, obj: Optional[HasHooks], owner: type) -> Union["Hook", "BoundHook"]:
        return self if obj is None else BoundHook(obj.hooks, self.name, self.__doc__)

    def __set__(self, obj: HasHooks, value: Optional[Callable[..., Any]]) -> None:
        if isinstance(value, BoundHook):
            value = value.handler
        if value is not None and not callable(value):
            raise TypeError(f"{self.name} must be callable")
        setattr(obj.hooks, self.name, value)


class BoundHook:
    """One listener's hook: call it with a function to register that function (a decorator)."""

    def __init__(self, hooks: Hooks, name: str, doc: Optional[str] = None) -> None:
        self._hooks, self._name = hooks, name
        self.__doc__ = doc

    @property
    def handler(self) -> Optional[Callable[..., Any]]:
        """The registered function, or None."""
        return getattr(self._hooks, self._name)  # type: ignore[no-any-return]

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(func):
            raise TypeError(f"@{self._name} decorates a function")
        setattr(self._hooks, self._name, func)
        return func

    def __bool__(self) -> bool:
        return self.handler is not None

    def __repr__(self) -> str:
        return f"<{self._name} hook: {self.handler!r}>"
