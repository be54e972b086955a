"""Reading RFC 6455 WebSocket frames sent by a server: pure, incremental, no I/O.

:class:`FrameReader` turns the bytes a client receives after the opening handshake into whole
messages and control frames. It owns one buffer and is driven the way asyncio's
``BufferedProtocol`` is: the caller reads from its socket straight into :meth:`~FrameReader.
get_buffer` (``sock.recv_into``), reports how much came with :meth:`~FrameReader.
buffer_updated`, and takes what is complete with :meth:`~FrameReader.frames`::

    reader = FrameReader()
    while True:
        n = sock.recv_into(reader.get_buffer())
        if not n: break                       # EOF
        reader.buffer_updated(n)
        for opcode, payload in reader.frames():
            ...                               # use payload before the next get_buffer()

:meth:`~FrameReader.feed` does the same for bytes from elsewhere (tests, other transports).

What :meth:`~FrameReader.frames` returns, as ``(opcode, payload)`` pairs in wire order:

- ``(OP_TEXT, payload)`` and ``(OP_BINARY, payload)``: one whole message each; a fragmented
  message (a first frame without FIN, continuation frames, the last with FIN) comes out once, its
  fragments joined, under the opcode of its first frame;
- ``(OP_PING, payload)``, ``(OP_PONG, payload)``: as they arrive, also between the fragments of a
  message (the only frames RFC 6455 5.4 lets in there); answering pings is the caller's job;
- ``(OP_CLOSE, payload)``: the close frame, always the last frame ever returned (bytes after it
  are ignored, RFC 6455 1.4); :func:`close_status` reads its code and reason.

Why so: a message of Binance's is a few hundred bytes and a busy stream sends hundreds of
thousands a second. websocket-client reads each frame with three or four system calls and builds
a frame object per frame; here one ``recv_into`` brings up to the buffer's size (256 KiB) of
frames, and a payload is handed out as a ``memoryview`` of the buffer, with no copy: a JSON
decoder takes it as it is (orjson), or decodes it to ``str`` once (the standard library). The
price is the rule the caller must keep: **a payload is valid only until the next call of**
:meth:`~FrameReader.get_buffer` **or** :meth:`~FrameReader.feed`, which may move the buffer's
bytes (copy it with ``bytes(payload)`` to keep it longer). Only a fragmented message is copied,
into a buffer of its own, to join its parts.

A frame larger than the buffer is not a special case: the buffer grows to hold it (up to
``max_size``), and shrinks back once it is empty.

Anything a server must not send is a :class:`FrameError`, whose ``code`` is the close code to
fail the connection with (RFC 6455 7.4.1): 1002 for a masked frame (servers never mask, 5.1),
reserved bits set without an extension that defines them (none is negotiated), an unknown opcode,
a control frame that is fragmented or longer than 125 bytes, a continuation frame with no message
to continue, a new message before the last one ended, a 64-bit length with its top bit set, a
close frame with a 1-byte payload or a code no endpoint may send; 1007 for a close reason that is
not UTF-8; 1009 for a message longer than ``max_size``. The frames before a FrameError are
returned first; the error comes with the next call, and with every call after it: the connection
is to be failed. Text payloads are not checked for UTF-8 here: the JSON decoder rejects invalid
UTF-8 anyway, without a second pass over every byte.
"""

from __future__ import annotations

from rxbinance.errors import InvalidInputError, ProtocolError

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "DEFAULT_MAX_SIZE",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameError",
    "FrameReader",
    "close_status",
]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

#: Bytes of the reader's buffer: the most one read can bring.
DEFAULT_BUFFER_SIZE = 256 * 1024
#: The longest message accepted: far above any Binance message, low enough that a corrupt or
#: hostile length cannot make the reader allocate gigabytes.
DEFAULT_MAX_SIZE = 64 * 1024 * 1024

_FIN = 0x80
_RSV = 0x70
# The first byte of an unfragmented text or binary frame: FIN, no RSV bit, opcode 1 or 2. Every
# other first byte takes the slow path, which validates it.
_WHOLE = (_FIN | OP_TEXT, _FIN | OP_BINARY)
_CONTROL_MAX = 125  # RFC 6455 5.5: control frames carry at most 125 bytes and are never split

# Close codes a peer may send (RFC 6455 7.4.1 and the IANA registry): 1004-1006 and 1015 are
# reserved for local use and never go on the wire; 3000-4999 belong to libraries and apps.
_SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


class FrameError(ProtocolError):
    """The server broke WebSocket framing (RFC 6455); ``code`` is the close code to fail the
    connection with: 1002 (protocol error), 1007 (invalid UTF-8) or 1009 (message too big)."""

    def __init__(self, message: str, *, code: int = 1002) -> None:
        super().__init__(message)
        self.code = code


def close_status(payload: bytes | bytearray | memoryview) -> tuple[int, str]:
    """Code and reason of a close frame's payload (as :meth:`FrameReader.frames` returns it,
    already validated); 1005 (no status received) for an empty one."""
    if len(payload) < 2:
        return 1005, ""
    return (payload[0] << 8) | payload[1], str(payload[2:], "utf-8")


class FrameReader:
    """Incremental reader of the frames a server sends; see the module docstring.

    Not thread-safe: one reader thread drives it. ``buffer_size`` is the size of its buffer (the
    most one read brings), ``max_size`` the longest message it accepts (a longer one is a
    :class:`FrameError` with code 1009, raised as soon as its length is known).
    """

    __slots__ = (
        "_buffer",
        "_buffer_size",
        "_closed",
        "_end",
        "_error",
        "_max_size",
        "_message",
        "_message_opcode",
        "_need",
        "_start",
        "_view",
    )

    def __init__(
        self, *, buffer_size: int = DEFAULT_BUFFER_SIZE, max_size: int = DEFAULT_MAX_SIZE
    ) -> None:
        if buffer_size < 16:
            raise InvalidInputError(f"buffer_size must be at least 16 bytes, not {buffer_size!r}")
        if max_size < _CONTROL_MAX:
            raise InvalidInputError(f"max_size must be at least 125 bytes, not {max_size!r}")
        self._buffer_size = buffer_size
        self._max_size = max_size
        self._buffer = bytearray(buffer_size)
        # Payloads are slices of this view: slicing a memoryview copies nothing.
        self._view = memoryview(self._buffer)
        self._start = 0  # first byte not yet parsed
        self._end = 0  # one past the last byte received
        self._need = 0  # length of the frame begun at _start once its header is known, else 0
        self._message: bytearray | None = None  # the fragments of an unfinished message
        self._message_opcode = OP_TEXT
        self._closed = False  # a close frame was returned: nothing more will be
        self._error: FrameError | None = None  # found after frames still to be returned

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as (part of) a frame."""
        return self._end - self._start

    def get_buffer(self) -> memoryview:
        """Where the next read goes: a writable view of the buffer's free space (never empty).

        Invalidates every payload returned so far: it may move the unparsed bytes to the
        front of the buffer, or give the buffer up for a larger or a smaller one.
        """
        start, end = self._start, self._end
        size = end - start
        capacity = len(self._buffer)
        if size == 0:
            if capacity > self._buffer_size:  # a big frame made it grow; it is gone now
                self._set_buffer(bytearray(self._buffer_size), 0, 0)
            else:
                self._start = self._end = 0
            return self._view[self._end :]
        if start + self._need > capacity or capacity - end < capacity >> 2:
            # The frame begun at `start` does not fit behind it, or little room is left: move
            # the unparsed tail (less than one frame) to the front, into a larger buffer if that
            # frame is larger than this one (or if the caller filled it without parsing).
            if self._need > capacity or size == capacity:
                grown = bytearray(max(self._need, size + (capacity >> 2)))
                grown[:size] = self._view[start:end]
                self._set_buffer(grown, 0, size)
            else:
                self._view[:size] = self._view[start:end]
                self._start, self._end = 0, size
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        """Record that the last :meth:`get_buffer` view received ``nbytes`` bytes (from its
        start)."""
        if not 0 <= nbytes <= len(self._buffer) - self._end:
            raise ValueError(
                f"nbytes must be between 0 and {len(self._buffer) - self._end}, not {nbytes!r}"
            )
        self._end += nbytes

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, bytes]]:
        """Take ``data`` (any amount) and return the frames it completed, payloads copied:
        the same as reading it through :meth:`get_buffer` and :meth:`frames`, errors included
        (frames before an error are returned, the error raised by the next call)."""
        out: list[tuple[int, bytes]] = []
        source = memoryview(data).cast("B")
        done = 0
        while True:
            # Parse first, so that a partial frame's known length can make room below.
            out.extend((opcode, bytes(payload)) for opcode, payload in self.frames())
            if done == len(source) or self._error is not None:
                return out
            target = self.get_buffer()
            n = min(len(target), len(source) - done)
            target[:n] = source[done : done + n]
            self.buffer_updated(n)
            done += n

    def frames(self) -> list[tuple[int, memoryview]]:
        """Every frame completed by the bytes received so far, as ``(opcode, payload)``; see
        the module docstring.

        Raises :class:`FrameError` for a frame a server must not send: at once if no frame
        precedes it, else on the next call, after the frames before it were returned (they are
        valid: deliver them, then fail the connection). Once raised, it is raised again by every
        call.
        """
        if self._error is not None:
            raise self._error
        if self._closed:
            self._start = self._end  # after the close frame nothing counts
            return []
        data = self._buffer
        view = self._view
        pos, end = self._start, self._end
        max_size = self._max_size
        need = 0  # set when the loop stops inside a payload: the whole frame's length
        out: list[tuple[int, memoryview]] = []
        append = out.append
        # While a fragmented message is open every frame takes the slow path.
        whole = _WHOLE if self._message is None else ()
        try:
            while end - pos >= 2:
                first = data[pos]
                length = data[pos + 1]
                # The second byte is the mask bit and a 7-bit length: below 126 it is the whole
                # length of an unmasked frame, the common case, decided by one comparison.
                if length < 126:
                    start = pos + 2
                elif length == 126:
                    if end - pos < 4:
                        break
                    length = (data[pos + 2] << 8) | data[pos + 3]
                    start = pos + 4
                elif length == 127:
                    if end - pos < 10:
                        break
                    length = int.from_bytes(view[pos + 2 : pos + 10], "big")
                    start = pos + 10
                    if length >> 63:
                        raise FrameError("a 64-bit frame length with its top bit set")
                else:
                    raise FrameError("the server sent a masked frame (RFC 6455 5.1)")
                if length > max_size:  # (max_size is at least 125: a 7-bit length fits)
                    raise FrameError(
                        f"a frame of {length} bytes, over max_size ({max_size})", code=1009
                    )
                stop = start + length
                if stop > end:
                    if first not in whole:
                        self._check(first, length)  # fail now, not after the payload came
                    need = stop - pos
                    break
                if first in whole:
                    append((first & 0x0F, view[start:stop]))  # the hot path: a whole message
                elif self._slow(first, view[start:stop], out):  # a close frame: the last one
                    pos = end
                    break
                else:
                    whole = _WHOLE if self._message is None else ()
                pos = stop
            # A header cut short needs at most 10 bytes: get_buffer() always leaves more room.
            return out
        except FrameError as exc:
            self._error = exc
            if out:
                return out  # the error follows on the next call
            raise
        finally:
            self._start = pos
            self._need = need

    # -- the slow path: fragments, control frames, errors ---------------------------------

    def _check(self, first: int, length: int) -> int:
        """Validate a frame's first byte (and a control frame's length); return its opcode."""
        if first & _RSV:
            raise FrameError(f"reserved bits set ({first & _RSV:#04x}) with no extension")
        opcode = first & 0x0F
        if opcode >= 0x8:
            if opcode > OP_PONG:
                raise FrameError(f"unknown control opcode {opcode:#x}")
            if not first & _FIN:
                raise FrameError(f"a fragmented control frame (opcode {opcode:#x})")
            if length > _CONTROL_MAX:
                raise FrameError(f"a control frame of {length} bytes (at most 125)")
        elif opcode > OP_BINARY:
            raise FrameError(f"unknown data opcode {opcode:#x}")
        return opcode

    def _slow(self, first: int, payload: memoryview, out: list[tuple[int, memoryview]]) -> bool:
        """Validate and add one frame off the hot path; True if it was the close frame."""
        opcode = self._check(first, len(payload))
        if opcode >= 0x8:
            if opcode == OP_CLOSE:
                _check_close(payload)
                self._closed = True
                self._message = None
            out.append((opcode, payload))
            return opcode == OP_CLOSE
        message = self._message
        if opcode == OP_CONTINUATION:
            if message is None:
                raise FrameError("a continuation frame with no message to continue")
            if len(message) + len(payload) > self._max_size:
                raise FrameError(
                    f"a fragmented message over max_size ({self._max_size})", code=1009
                )
            message += payload
            if first & _FIN:
                self._message = None
                out.append((self._message_opcode, memoryview(message)))
            return False
        if message is not None:
            raise FrameError(f"a new message (opcode {opcode:#x}) before the last one ended")
        if first & _FIN:  # a whole message (frames() takes these on its fast path)
            out.append((opcode, payload))
            return False
        self._message = bytearray(payload)
        self._message_opcode = opcode
        return False

    def _set_buffer(self, buffer: bytearray, start: int, end: int) -> None:
        self._buffer = buffer
        self._view = memoryview(buffer)
        self._start, self._end = start, end


def _check_close(payload: memoryview) -> None:
    if len(payload) == 1:
        raise FrameError("a close frame with a 1-byte payload")
    if len(payload) >= 2:
        code = (payload[0] << 8) | payload[1]
        if code not in _SENDABLE_CLOSE_CODES and not 3000 <= code <= 4999:
            raise FrameError(f"close code {code} may not be sent")
        try:
            str(payload[2:], "utf-8")
        except UnicodeDecodeError:
            raise FrameError("a close reason that is not UTF-8", code=1007) from None
