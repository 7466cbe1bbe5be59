"""A streamed request body: the rendezvous reader feeds it, the handler reads it as a file.

With ``stream_request_bodies=True`` a listener hands a request read off a
rendezvous socket to its handler as soon as the request's head arrives; the
body follows through a :class:`RequestBodyStream`. The reader thread blocks
in :meth:`~RequestBodyStream.feed` while more than ``limit`` bytes wait
unread, so it stops reading the socket and TCP flow control slows the
sender: a body of any size passes in bounded memory.

Once the response went out (:meth:`~RequestBodyStream.abandon`), whatever the
handler did not read is read and dropped, so the socket can carry the
sender's next request.
"""

from __future__ import annotations

import io
import threading
import time
from collections import deque
from typing import Deque, List, Optional

from ..exceptions import ConnectionClosed, HybridConnectionError, RelayTimeoutError

__all__ = ["RequestBodyStream", "DEFAULT_BUFFER"]

#: Bytes a stream holds unread before its feeder waits.
DEFAULT_BUFFER = 1024 * 1024

#: Seconds between the feeder's looks at whether the stream was abandoned or aborted.
_FEED_POLL = 0.5


class RequestBodyStream(io.RawIOBase):
    """A request body as a read-only binary file (``read``, ``readinto``, ``readline``, iteration).

    ``read()`` returns ``b""`` at the end of the body. A sender that stalls for
    ``timeout`` seconds raises :class:`~hybridconn.exceptions.RelayTimeoutError`;
    a socket that breaks before the end raises the
    :class:`~hybridconn.exceptions.HybridConnectionError` it broke with.

    :param timeout: seconds a read waits for the next piece of the body.
    :param limit: unread bytes held before :meth:`feed` waits.
    """

    def __init__(self, timeout: Optional[float] = 30.0, limit: int = DEFAULT_BUFFER) -> None:
        super().__init__()
        self.timeout = timeout
        self.limit = limit
        self._cond = threading.Condition()
        self._chunks: Deque[bytes] = deque()
        self._held = 0
        self._ended = False
        self._abandoned = False
        self._error: Optional[HybridConnectionError] = None
        #: Body bytes fed so far (the reader's count, read or not).
        self.received = 0

    # ---------------------------------------------------------------- the feeder's side (the reader thread)

    def feed(self, data: bytes) -> None:
        """Add the next piece; waits while ``limit`` bytes are unread (dropped once abandoned)."""
        with self._cond:
            self.received += len(data)
            while self._held >= self.limit and not (self._abandoned or self._error is not None):
                self._cond.wait(_FEED_POLL)
            if self._abandoned or self._error is not None:
                return
            self._chunks.append(data)
            self._held += len(data)
            self._cond.notify_all()

    def finish(self) -> None:
        """The body is complete."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def fail(self, error: HybridConnectionError) -> None:
        """The body broke off: readers get ``error`` once what arrived is read (no-op after the end)."""
        with self._cond:
            if not self._ended and self._error is None:
                self._error = error
            self._cond.notify_all()

    def abandon(self) -> None:
        """The response went out: drop what is held and what still comes."""
        with self._cond:
            self._abandoned = True
            self._chunks.clear()
            self._held = 0
            self._cond.notify_all()

    @property
    def ended(self) -> bool:
        """True once the whole body arrived."""
        return self._ended

    # ---------------------------------------------------------------- the handler's side

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "bytearray | memoryview") -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self._take(len(view))
        view[:len(data)] = data
        return len(data)

    def read(self, size: Optional[int] = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return self._take(size)

    def readall(self) -> bytes:
        parts: List[bytes] = []
        while True:
            data = self._take(DEFAULT_BUFFER)
            if not data:
                return b"".join(parts)
            parts.append(data)

    def readline(self, size: Optional[int] = -1) -> bytes:
        parts = []
        total = 0
        while size is None or size < 0 or total < size:
            want = DEFAULT_BUFFER if size is None or size < 0 else size - total
            data = self._take(want, until=b"\n")
            if not data:
                break
            parts.append(data)
            total += len(data)
            if data.endswith(b"\n"):
                break
        return b"".join(parts)

    def _take(self, size: int, until: Optional[bytes] = None) -> bytes:
        """Up to ``size`` bytes (up to and including ``until``), waiting for the first; b"" at the end."""
        if size == 0:
            return b""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        with self._cond:
            while not self._chunks:
                if self._ended or self._abandoned:
                    return b""
                if self._error is not None:
                    raise self._error
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise RelayTimeoutError(f"no request body data for {self.timeout:g} s")
                self._cond.wait(left)
            chunk = self._chunks[0]
            cut = min(size, len(chunk))
            if until is not None:
                at = chunk.find(until, 0, cut)
                if at >= 0:
                    cut = at + len(until)
            if cut == len(chunk):
                self._chunks.popleft()
            else:
                self._chunks[0] = chunk[cut:]
                chunk = chunk[:cut]
            self._held -= cut
            self._cond.notify_all()
            return chunk

    def close(self) -> None:
        """Closing the file drops the rest of the body, like :meth:`abandon`."""
        self.abandon()
        super().close()

    def __repr__(self) -> str:
        state = "ended" if self._ended else "abandoned" if self._abandoned else "open"
        return f"<RequestBodyStream {state} {self.received} bytes received>"


def closed_error() -> ConnectionClosed:
    """What a stream's reader gets when the listener closes mid-body."""
    return ConnectionClosed(1001, "listener closing")
