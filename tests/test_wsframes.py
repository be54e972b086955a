"""The WebSocket frame reader (rxbinance.protocol.wsframes), table-driven, no sockets.

Frames are built by hand here, byte by byte from RFC 6455 5.2, so that every header form can be
written, the invalid ones included.
"""

from __future__ import annotations

import random
import struct

import pytest

from rxbinance.errors import InvalidInputError, ProtocolError
from rxbinance.protocol.wsframes import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    FrameReader,
    close_status,
)


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    form: int | None = None,
    mask: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """One frame. ``form`` forces the length encoding (7, 16 or 64 bits; default: the shortest),
    ``length`` overrides the length written in the header, ``mask`` masks the payload."""
    n = len(payload) if length is None else length
    if form is None:
        form = 7 if n < 126 else 16 if n < 1 << 16 else 64
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if mask is not None else 0
    if form == 7:
        header = bytes([first, mask_bit | n])
    elif form == 16:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", n)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", n)
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header += mask
    return header + payload


def text(payload: bytes, **kwargs: object) -> bytes:
    return frame(OP_TEXT, payload, **kwargs)  # type: ignore[arg-type]


def close(code: int | None = None, reason: bytes = b"") -> bytes:
    return frame(OP_CLOSE, b"" if code is None else struct.pack("!H", code) + reason)


def read_in_pieces(reader: FrameReader, data: bytes, sizes: list[int]) -> list[tuple[int, bytes]]:
    """Read ``data`` as a socket would deliver it, ``sizes`` bytes at a time (cycled), through
    get_buffer / buffer_updated / frames, copying each payload before the next read."""
    out: list[tuple[int, bytes]] = []
    done, turn = 0, 0
    while done < len(data):
        target = reader.get_buffer()
        assert len(target) > 0
        n = min(len(target), sizes[turn % len(sizes)], len(data) - done)
        turn += 1
        target[:n] = data[done : done + n]
        reader.buffer_updated(n)
        done += n
        out.extend((opcode, bytes(payload)) for opcode, payload in reader.frames())
    return out


# -- every header length -----------------------------------------------------------------------

LENGTHS = [*range(126), 126, 127, 65535, 65536, 300_000]


@pytest.mark.parametrize("n", LENGTHS)
def test_every_length_in_its_shortest_form(n: int) -> None:
    payload = bytes(i % 251 for i in range(n))
    assert FrameReader().feed(text(payload)) == [(OP_TEXT, payload)]


@pytest.mark.parametrize(
    ("n", "form"), [(0, 16), (5, 16), (125, 16), (0, 64), (5, 64), (126, 64), (65535, 64)]
)
def test_longer_length_forms_than_needed_are_read_too(n: int, form: int) -> None:
    # RFC 6455 asks the sender for the shortest form; a longer one is still unambiguous.
    payload = b"x" * n
    assert FrameReader().feed(frame(OP_BINARY, payload, form=form)) == [(OP_BINARY, payload)]


@pytest.mark.parametrize("n", [0, 1, 125, 126, 65535, 65536, 300_000])
def test_frames_larger_than_the_buffer_grow_it_and_it_shrinks_back(n: int) -> None:
    reader = FrameReader(buffer_size=64)
    payload = bytes(i % 13 for i in range(n))
    stream = text(payload) + text(b"after")
    assert read_in_pieces(reader, stream, [7, 64, 1000]) == [
        (OP_TEXT, payload),
        (OP_TEXT, b"after"),
    ]
    assert reader.buffered == 0
    assert len(reader.get_buffer()) == 64  # back to its own size once the big frame is read


# -- split at every byte boundary --------------------------------------------------------------

SPLIT_CASES = {
    "7-bit text": [text(b'{"e":"trade","p":"1.0"}')],
    "16-bit text": [text(b"a" * 300)],
    "64-bit binary": [frame(OP_BINARY, b"b" * 70_000)],
    "ping, text, pong, close": [
        frame(OP_PING, b"hi"),
        text(b"[1,2,3]"),
        frame(OP_PONG),
        close(1000, b"bye"),
    ],
    "fragments with a ping between": [
        text(b"hel", fin=False),
        frame(OP_PING, b"p"),
        frame(OP_CONTINUATION, b"lo ", fin=False),
        frame(OP_CONTINUATION, b"world"),
    ],
}
EXPECTED = {
    "7-bit text": [(OP_TEXT, b'{"e":"trade","p":"1.0"}')],
    "16-bit text": [(OP_TEXT, b"a" * 300)],
    "64-bit binary": [(OP_BINARY, b"b" * 70_000)],
    "ping, text, pong, close": [
        (OP_PING, b"hi"),
        (OP_TEXT, b"[1,2,3]"),
        (OP_PONG, b""),
        (OP_CLOSE, struct.pack("!H", 1000) + b"bye"),
    ],
    "fragments with a ping between": [(OP_PING, b"p"), (OP_TEXT, b"hello world")],
}


@pytest.mark.parametrize("case", list(SPLIT_CASES))
def test_split_at_every_byte_boundary(case: str) -> None:
    data = b"".join(SPLIT_CASES[case])
    # Every split point for the small cases; for the 70 kB frame, every point of its header and
    # its first and last bytes (the payload copy in between is the same code at every offset).
    points = range(len(data) + 1)
    if len(data) > 1000:
        points = [*range(20), *range(len(data) - 20, len(data) + 1)]  # type: ignore[assignment]
    for split in points:
        reader = FrameReader()
        got = reader.feed(data[:split]) + reader.feed(data[split:])
        assert got == EXPECTED[case], f"split at byte {split}"


@pytest.mark.parametrize("case", [c for c in SPLIT_CASES if c != "64-bit binary"])
def test_one_byte_at_a_time(case: str) -> None:
    data = b"".join(SPLIT_CASES[case])
    reader = FrameReader(buffer_size=16)
    assert read_in_pieces(reader, data, [1]) == EXPECTED[case]


def test_a_long_mixed_stream_read_in_uneven_pieces() -> None:
    # Hundreds of frames of every size class and kind, read in pseudo-random pieces through a
    # small buffer, so that frames straddle reads, compactions and growths everywhere.
    rng = random.Random(12)
    data, expected = b"", []
    for i in range(400):
        size = rng.choice([0, 1, 60, 125, 126, 200, 4000, 65535, 65536, 70_000])
        payload = bytes([i % 256]) * size
        kind = rng.random()
        if kind < 0.1:
            data += frame(OP_PING, payload[:125])
            expected.append((OP_PING, payload[:125]))
        elif kind < 0.2:
            half = size // 2
            data += text(payload[:half], fin=False) + frame(OP_PONG, b"x")
            data += frame(OP_CONTINUATION, payload[half:])
            expected += [(OP_PONG, b"x"), (OP_TEXT, payload)]
        else:
            data += text(payload)
            expected.append((OP_TEXT, payload))
    reader = FrameReader(buffer_size=4096)
    sizes = [rng.randint(1, 9000) for _ in range(50)]
    assert read_in_pieces(reader, data, sizes) == expected


# -- fragmented messages and control frames ----------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        (  # three fragments of a text message
            [text(b"a", fin=False), frame(OP_CONTINUATION, b"b", fin=False),
             frame(OP_CONTINUATION, b"c")],
            [(OP_TEXT, b"abc")],
        ),
        (  # a binary message keeps its opcode
            [frame(OP_BINARY, b"\x00", fin=False), frame(OP_CONTINUATION, b"\x01")],
            [(OP_BINARY, b"\x00\x01")],
        ),
        (  # empty fragments
            [text(b"", fin=False), frame(OP_CONTINUATION, b"", fin=False),
             frame(OP_CONTINUATION, b"")],
            [(OP_TEXT, b"")],
        ),
        (  # control frames between fragments come out at once, in wire order
            [text(b"x", fin=False), frame(OP_PING, b"1"), frame(OP_PONG, b"2"),
             frame(OP_CONTINUATION, b"y", fin=False), frame(OP_PING, b"3"),
             frame(OP_CONTINUATION, b"z")],
            [(OP_PING, b"1"), (OP_PONG, b"2"), (OP_PING, b"3"), (OP_TEXT, b"xyz")],
        ),
        (  # a message after a fragmented one
            [text(b"a", fin=False), frame(OP_CONTINUATION, b"b"), text(b"c")],
            [(OP_TEXT, b"ab"), (OP_TEXT, b"c")],
        ),
        (  # a close frame between fragments ends everything, the message unfinished
            [text(b"a", fin=False), close(1001), frame(OP_CONTINUATION, b"b")],
            [(OP_CLOSE, struct.pack("!H", 1001))],
        ),
        (  # 16-bit and 64-bit fragments
            [text(b"a" * 300, fin=False), frame(OP_CONTINUATION, b"b" * 70_000)],
            [(OP_TEXT, b"a" * 300 + b"b" * 70_000)],
        ),
    ],
)  # fmt: skip
def test_fragmented_messages(frames: list[bytes], expected: list[tuple[int, bytes]]) -> None:
    assert FrameReader().feed(b"".join(frames)) == expected


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"", (1005, "")),
        (struct.pack("!H", 1000), (1000, "")),
        (struct.pack("!H", 1001) + b"going away", (1001, "going away")),
        (struct.pack("!H", 1008) + b"Too many requests", (1008, "Too many requests")),
        (struct.pack("!H", 3000), (3000, "")),
        (struct.pack("!H", 4999) + "é".encode(), (4999, "é")),
    ],
)
def test_close_frames_with_and_without_a_code(payload: bytes, status: tuple[int, str]) -> None:
    reader = FrameReader()
    got = reader.feed(frame(OP_CLOSE, payload) + text(b"ignored after the close"))
    assert got == [(OP_CLOSE, payload)]
    assert close_status(got[0][1]) == status
    assert reader.feed(text(b"still ignored")) == []
    assert reader.buffered == 0


def test_payloads_are_views_of_the_buffer_until_the_next_read() -> None:
    reader = FrameReader()
    target = reader.get_buffer()
    data = text(b"one") + text(b"two")
    target[: len(data)] = data
    reader.buffer_updated(len(data))
    frames = reader.frames()
    assert [(op, type(p), bytes(p)) for op, p in frames] == [
        (OP_TEXT, memoryview, b"one"),
        (OP_TEXT, memoryview, b"two"),
    ]
    assert reader.frames() == []  # taken once


# -- what a server must not send ---------------------------------------------------------------

ERRORS = {
    "masked frame": (text(b"hi", mask=b"abcd"), 1002, "masked"),
    "RSV1": (text(b"hi", rsv=0x40), 1002, "reserved bits"),
    "RSV2": (text(b"hi", rsv=0x20), 1002, "reserved bits"),
    "RSV3": (frame(OP_PING, rsv=0x10), 1002, "reserved bits"),
    "RSV on a continuation": (
        text(b"a", fin=False) + frame(OP_CONTINUATION, b"b", rsv=0x40),
        1002,
        "reserved bits",
    ),
    **{
        f"data opcode {op:#x}": (frame(op, b"x"), 1002, "unknown data opcode") for op in range(3, 8)
    },
    **{
        f"control opcode {op:#x}": (frame(op, b"x"), 1002, "unknown control opcode")
        for op in range(0xB, 0x10)
    },
    "continuation with nothing to continue": (
        frame(OP_CONTINUATION, b"x"),
        1002,
        "no message to continue",
    ),
    "new message inside a fragmented one": (
        text(b"a", fin=False) + text(b"b"),
        1002,
        "before the last one ended",
    ),
    "new binary message inside a fragmented one": (
        text(b"a", fin=False) + frame(OP_BINARY, b"b", fin=False),
        1002,
        "before the last one ended",
    ),
    "fragmented ping": (frame(OP_PING, b"x", fin=False), 1002, "fragmented control"),
    "ping of 126 bytes": (frame(OP_PING, b"x" * 126), 1002, "at most 125"),
    "close of 126 bytes": (close(1000, b"x" * 124), 1002, "at most 125"),
    "close with one byte": (frame(OP_CLOSE, b"\x03"), 1002, "1-byte"),
    "close code 1005": (close(1005), 1002, "1005"),
    "close code 1006": (close(1006), 1002, "1006"),
    "close code 999": (close(999), 1002, "999"),
    "close code 2999": (close(2999), 1002, "2999"),
    "close code 5000": (close(5000), 1002, "5000"),
    "close reason not UTF-8": (close(1000, b"\xff"), 1007, "UTF-8"),
    "64-bit length, top bit set": (
        bytes([0x81, 127]) + struct.pack("!Q", 1 << 63),
        1002,
        "top bit",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_protocol_errors(case: str) -> None:
    data, code, words = ERRORS[case]
    with pytest.raises(FrameError, match=words) as caught:
        FrameReader().feed(data)
    assert caught.value.code == code
    assert isinstance(caught.value, ProtocolError)


@pytest.mark.parametrize(
    "header",
    [
        bytes([0x81, 126]) + struct.pack("!H", 1001),
        bytes([0x82, 127]) + struct.pack("!Q", 1001),
        bytes([0x81, 127]) + struct.pack("!Q", 1 << 40),
    ],
)
def test_an_oversized_frame_fails_on_its_header_before_its_payload(header: bytes) -> None:
    reader = FrameReader(max_size=1000)
    with pytest.raises(FrameError, match="over max_size") as caught:
        reader.feed(header)  # no payload byte sent: it is refused without waiting (or growing)
    assert caught.value.code == 1009


def test_a_control_frame_too_long_fails_before_its_payload() -> None:
    with pytest.raises(FrameError, match="at most 125"):
        FrameReader().feed(bytes([0x89, 126]) + struct.pack("!H", 200))


def test_an_oversized_fragmented_message_fails() -> None:
    reader = FrameReader(max_size=1000)
    assert reader.feed(text(b"a" * 600, fin=False)) == []
    with pytest.raises(FrameError, match="fragmented message over max_size") as caught:
        reader.feed(frame(OP_CONTINUATION, b"b" * 600))
    assert caught.value.code == 1009


def test_at_max_size_is_still_accepted() -> None:
    reader = FrameReader(max_size=1000)
    payload = b"a" * 1000
    assert reader.feed(text(payload[:400], fin=False) + frame(OP_CONTINUATION, payload[400:])) == [
        (OP_TEXT, payload)
    ]
    assert reader.feed(text(payload)) == [(OP_TEXT, payload)]


def test_frames_before_an_error_come_first_then_the_error_for_good() -> None:
    reader = FrameReader()
    bad = frame(OP_PING, b"x", fin=False)
    assert reader.feed(text(b"one") + frame(OP_PING, b"p") + bad + text(b"never")) == [
        (OP_TEXT, b"one"),
        (OP_PING, b"p"),
    ]
    for _ in range(2):
        with pytest.raises(FrameError, match="fragmented control"):
            reader.frames()
    with pytest.raises(FrameError, match="fragmented control"):
        reader.feed(text(b"more"))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"buffer_size": 15}, "buffer_size must be at least 16 bytes, not 15"),
        ({"max_size": 124}, "max_size must be at least 125 bytes, not 124"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, int], words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        FrameReader(**kwargs)


def test_buffer_updated_refuses_more_than_was_offered() -> None:
    reader = FrameReader(buffer_size=16)
    offered = len(reader.get_buffer())
    with pytest.raises(ValueError, match=f"between 0 and {offered}, not {offered + 1}"):
        reader.buffer_updated(offered + 1)
    with pytest.raises(ValueError, match="not -1"):
        reader.buffer_updated(-1)


def test_a_full_buffer_never_offers_an_empty_view() -> None:
    # A caller that fills the buffer without parsing still gets room for the next read.
    reader = FrameReader(buffer_size=16)
    first = reader.get_buffer()
    first[:] = b"\x81\x7e" + b"\x00" * 14  # an unfinished 16-bit frame header and payload
    reader.buffer_updated(len(first))
    assert len(reader.get_buffer()) > 0
