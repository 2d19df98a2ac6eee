"""The client's byte stream: one asyncio connection to a daemon, fed through the shared frame reader.

Theory of operation
-------------------
Everything here runs on the event loop that opened the connection; nothing is thread-safe and
nothing needs to be. :class:`ClientStream` is an ``asyncio.Protocol``. Its ``data_received``
feeds :class:`~pyro4compat._frames.FrameReader` (the one sans-IO reader every transport uses)
and turns each complete frame into a :class:`~pyro4compat.message.Message` with
``message.message_from_frame``; the proxy checks each reply with ``message.receive_problem``
(expected type, HMAC), the validation step of every transport, so no byte is parsed a second way.

Pyro4's protocol has no request ids beyond the 16-bit sequence number, and a daemon answers one
connection's requests strictly in order. The stream therefore keeps a FIFO of ``(seq, future)``
for requests that expect a reply: the next reply belongs to the oldest entry. A reply whose
sequence number differs is Pyro4's "reply sequence out of sync" and fails the connection. A
waiter that was cancelled (task cancelled, ``asyncio.wait_for`` expired) leaves its entry in the
queue with its future done: its reply is read off and dropped when it arrives, so it can never be
handed to a later call, and the connection stays usable.

Any stream error (bad bytes, oversized reply, connection lost) fails every waiting future with
that error and closes the transport; the proxy then reconnects on its next call.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Deque, Iterable, Optional, Tuple

from .. import _frames, errors
from ..configuration import config
from ..message import Message, message_from_frame, receive_problem

__all__ = ["ClientStream", "reply_problem"]


reply_problem = receive_problem   # the proxy's name for the shared validation step


class ClientStream(asyncio.Protocol):
    """One connection's reader and writer (see the module docstring for the FIFO rule)."""

    def __init__(self, hmac_key: Optional[bytes]) -> None:
        self.hmac_key = hmac_key
        self.transport: Optional[asyncio.Transport] = None
        self.reader = _frames.FrameReader(config.MAX_MESSAGE_SIZE)
        self.waiting: Deque[Tuple[int, asyncio.Future]] = collections.deque()
        self.failure: Optional[BaseException] = None
        self.objectId: Optional[str] = None   # the object a PYRO: URI named (as SocketConnection has it)
        self.lost = asyncio.Event()

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while self.failure is None:
            try:
                frame = self.reader.next_frame()
            except errors.ProtocolError as exc:   # MessageTooLargeError included
                self.fail(exc)
                return
            if frame is _frames.NEED_DATA:
                return
            self._deliver(message_from_frame(frame, self.hmac_key))  # type: ignore[arg-type]

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost.set()
        text = "receiving: connection lost" if exc is None else "receiving: connection lost: %s" % exc
        self.fail(errors.ConnectionClosedError(text))

    # --- used by the proxy --------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return self.failure is None and self.transport is not None and not self.transport.is_closing()

    def send(self, data: Any) -> None:
        """``Message.send`` target: queue bytes on the transport (never blocks, never partial)."""
        if not self.usable:
            raise self.failure or errors.ConnectionClosedError("sending: connection lost")
        self.transport.write(data)  # type: ignore[union-attr]

    def send_buffers(self, buffers: Iterable[Any]) -> None:
        if not self.usable:
            raise self.failure or errors.ConnectionClosedError("sending: connection lost")
        self.transport.writelines(buffers)  # type: ignore[union-attr]

    def expect(self, seq: int) -> "asyncio.Future[Message]":
        """A future for the reply to the request with ``seq`` that is about to be (or was just) sent."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.waiting.append((seq, future))
        return future

    def fail(self, exc: BaseException) -> None:
        """Fail every waiter with ``exc`` and close: the stream position is lost."""
        if self.failure is None:
            self.failure = exc
        waiting, self.waiting = self.waiting, collections.deque()
        for _, future in waiting:
            if not future.done():
                future.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        self.fail(errors.ConnectionClosedError("the proxy's connection was released"))

    async def wait_closed(self, timeout: float) -> None:
        """Wait until the transport is really gone (TLS says goodbye first); abort past ``timeout``."""
        if self.transport is None:
            return
        try:
            await asyncio.wait_for(self.lost.wait(), timeout)
        except asyncio.TimeoutError:
            self.transport.abort()

    def _deliver(self, msg: Message) -> None:
        if not self.waiting:
            self.fail(errors.ProtocolError("unexpected message from the daemon (no call waiting), seq %d" % msg.seq))
            return
        seq, future = self.waiting.popleft()
        if msg.seq != seq:
            self.waiting.appendleft((seq, future))
            self.fail(errors.ProtocolError("invoke: reply sequence out of sync, got %d expected %d" % (msg.seq, seq)))
            return
        if not future.done():    # done: its caller gave up (cancelled, timed out); drop the stale reply
            future.set_result(msg)
