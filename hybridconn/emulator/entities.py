"""Hybrid connections and the control channels of their listeners."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from .ws import WsChannel

__all__ = ["Entity", "ListenerChannel"]

log: logging.Logger = logging.getLogger(__name__)


@dataclass
class Entity:
    """One hybrid connection."""

    name: str
    requires_client_authorization: bool = True
    listeners: Dict[str, "ListenerChannel"] = field(default_factory=dict)
    refuse_until: float = 0.0
    refuse_status: int = 503


class ListenerChannel:
    """A listener's control channel.

    :param ws: its WebSocket (registered before the 101 goes out).
    :param base_url: ``scheme://host[:port]`` as the listener reached us; the
        rendezvous addresses sent on this channel use it.
    :param audiences: the resources its token may be signed for (a renewed token too).
    :param expires_at: Unix time its current token expires.
    """

    def __init__(
        self,
        entity: Entity,
        listener_id: str,
        ws: WsChannel,
        base_url: str,
        audiences: Tuple[str, ...],
        expires_at: float,
    ) -> None:
        self.entity = entity
        self.listener_id = listener_id
        self.ws = ws
        self.base_url = base_url
        self.audiences = audiences
        self.expires_at = expires_at
        self.stalled: threading.Event = threading.Event()
        self.released: threading.Event = threading.Event()  # set when the channel must stop (drop fault, stop())
        self.online_since: float = time.monotonic()
        self.restarting: bool = False  # the service closed it with 1011 NameRenewalFailed

    def send(self, text: str, body: Optional[bytes] = None) -> bool:
        """Send a control message (and its body). A stalled channel swallows it silently."""
        if self.stalled.is_set():
            log.debug("listener %s is stalled; dropping a control message", self.listener_id)
            return True
        return self.ws.send_unit(text, body)
