"""Both JSON decoders (rxbinance.protocol.jsonlib) give identical results: the standard library
and orjson (the ``speed`` extra, installed by '.[dev]'), over the real Binance captures in
tests/data, table-driven edge cases and a real socket; and the choice is made once at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from rxbinance.errors import InvalidInputError
from rxbinance.events import MalformedFrame
from rxbinance.protocol import jsonlib
from rxbinance.testing import FakeBinance
from rxbinance.transport import StreamSocket

DATA = Path(__file__).resolve().parent / "data"
NAMES = ["stdlib", "orjson"]


def typed(value: Any) -> Any:
    """``value`` with every scalar paired with its type: 1 and 1.0 and True compare equal in
    Python, but a decoder that returned one for the other would not be giving identical
    results."""
    if type(value) is dict:
        return {key: typed(item) for key, item in value.items()}
    if type(value) is list:
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def capture_frames() -> list[bytes]:
    """Every WebSocket frame of the capture, verbatim, and every REST body."""
    lines = (DATA / "binance-spot.ws.txt").read_bytes().splitlines()[1:]
    frames = [line.split(b": ", 1)[1] for line in lines if line.strip()]
    bodies = [
        line.split(b": ", 1)[1]
        for line in (DATA / "binance-spot.http.txt").read_bytes().splitlines()
        if line.strip()
    ]
    assert len(frames) == 265
    assert len(bodies) == 4
    return frames + bodies


def test_both_decoders_are_installed_in_dev() -> None:
    # '.[dev]' brings orjson, so that every test here runs both paths.
    assert sorted(jsonlib.BACKENDS) == ["orjson", "stdlib"]


def test_the_capture_decodes_identically_both_ways() -> None:
    stdlib, fast = jsonlib.BACKENDS["stdlib"], jsonlib.BACKENDS["orjson"]
    for raw in capture_frames():
        expected = typed(json.loads(raw))
        for form in (raw, bytearray(raw), memoryview(raw), raw.decode()):
            assert typed(stdlib(form)) == expected
            assert typed(fast(form)) == expected


DOCUMENTS = [
    b"{}",
    b"[]",
    b'{"e":"trade","E":1700000000000,"t":3300000000,"p":"43000.01000000","m":true,"M":false}',
    b'{"a":null,"b":[true,false,null],"c":{"d":[[]]}}',
    b"[0,-0,1,-1,9223372036854775807,-9223372036854775808]",
    b"[0.0,-0.0,0.1,1.5,-2.25,1e-7,1E+3,6.02e23,1.7976931348623157e308,5e-324]",
    b'["", "\\u00e9\\u4e2d\\ud83d\\ude00", "\\"\\\\\\/\\b\\f\\n\\r\\t", "\xc3\xa9"]',
    b' \t\r\n{ "spaced" : [ 1 , 2 ] } \n',
    b'{"dup":1,"dup":2}',
    b'"just a string"',
    b"42",
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_edge_documents_decode_identically(document: bytes) -> None:
    results = [typed(jsonlib.BACKENDS[name](document)) for name in NAMES]
    assert results[0] == results[1] == typed(json.loads(document))


INVALID = [
    b"",
    b"   ",
    b"[1] x",
    b"{not json",
    b"[1,]",
    b'{"a":1,}',
    b"NaN",
    b"[Infinity]",
    b"-Infinity",
    b'"\xff"',  # invalid UTF-8
    b'"\xed\xa0\x80"',  # a UTF-16 surrogate encoded in UTF-8: not UTF-8
    b"[1] [2]",
    b"'single'",
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("document", INVALID)
def test_invalid_documents_raise_valueerror_both_ways(name: str, document: bytes) -> None:
    # Both are ValueErrors, what the read loop catches (orjson's error subclasses the first).
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)):
        jsonlib.BACKENDS[name](memoryview(document))


@pytest.mark.parametrize(
    ("choice", "backend"),
    [(None, "orjson"), ("", "orjson"), ("auto", "orjson"), ("stdlib", "stdlib"),
     (" STDLIB ", "stdlib"), ("orjson", "orjson"), ("OrJSON", "orjson")],
)  # fmt: skip
def test_select(choice: str | None, backend: str) -> None:
    name, loads = jsonlib.select(choice)
    assert name == backend
    assert loads is jsonlib.BACKENDS[backend]


def test_select_refuses_an_unknown_choice() -> None:
    with pytest.raises(InvalidInputError, match="'auto', 'stdlib' or 'orjson', not 'simdjson'"):
        jsonlib.select("simdjson")


def test_without_orjson_auto_falls_back_and_orjson_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(jsonlib.BACKENDS, "orjson")  # as on an install without the extra
    assert jsonlib.select("auto") == ("stdlib", jsonlib.BACKENDS["stdlib"])
    with pytest.raises(ImportError, match=r"pip install 'rxbinance\[speed\]'"):
        jsonlib.select("orjson")


@pytest.mark.parametrize(("env", "backend"), [("stdlib", "stdlib"), (None, "orjson")])
def test_the_choice_is_made_at_import_from_the_environment(env: str | None, backend: str) -> None:
    environ = {k: v for k, v in os.environ.items() if k != jsonlib.ENV_VAR}
    if env is not None:
        environ[jsonlib.ENV_VAR] = env
    out = subprocess.run(
        [sys.executable, "-c", "from rxbinance.protocol import jsonlib; print(jsonlib.BACKEND)"],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == backend


# -- both ways through a real socket -----------------------------------------------------------


def depth_payloads() -> list[str]:
    """The inner payloads of the capture's NKNUSDT diff-depth frames, byte for byte."""
    prefix = '{"stream":"nknusdt@depth@100ms","data":'
    lines = (DATA / "binance-spot.ws.txt").read_text().splitlines()[1:]
    frames = [line.split(": ", 1)[1] for line in lines if line.strip()]
    return [f[len(prefix) : -1] for f in frames if f.startswith(prefix)]


@pytest.mark.parametrize("name", NAMES)
def test_a_real_socket_delivers_the_same_values_with_either_decoder(
    fake: FakeBinance, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # The read loop looks jsonlib.loads up per connection: swap in one backend, then connect.
    monkeypatch.setattr(jsonlib, "loads", jsonlib.BACKENDS[name])
    payloads = depth_payloads()
    assert len(payloads) > 20
    got: list[Any] = []
    malformed: list[MalformedFrame] = []
    done = threading.Event()
    expected_count = len(payloads)

    def on_message(message: Any) -> None:
        got.append(message)
        if len(got) == expected_count:
            done.set()

    def on_event(event: Any) -> None:
        if isinstance(event, MalformedFrame):
            malformed.append(event)

    closed: list[Any] = []
    sock = StreamSocket(
        fake.ws_url + "/ws/nknusdt@depth@100ms",
        key="nknusdt@depth@100ms",
        on_message=on_message,
        on_event=on_event,
        on_closed=closed.append,
    )
    sock.start()
    try:
        fake.wait_for_connections(1, stream="nknusdt@depth@100ms")
        fake.publish("nknusdt@depth@100ms", "{not json")  # the malformed path, both ways
        for payload in payloads:
            fake.publish("nknusdt@depth@100ms", payload)
        assert done.wait(10)
    finally:
        sock.close()
        sock.join(5)
    assert [typed(m) for m in got] == [typed(json.loads(p)) for p in payloads]
    assert len(malformed) == 1
    assert malformed[0].excerpt == "{not json"
    assert closed == [None]


def test_both_encoders_write_the_same_bytes_for_captured_payloads_and_models() -> None:
    from rxbinance import models
    from rxbinance.bridge import as_json

    stdlib, fast = jsonlib.ENCODERS["stdlib"], jsonlib.ENCODERS["orjson"]
    for frame in capture_frames():
        payload = jsonlib.BACKENDS["stdlib"](frame)
        assert fast(payload) == stdlib(payload)
        inner = payload.get("data", payload) if isinstance(payload, dict) else payload
        if isinstance(inner, dict) and "e" in inner:
            model = as_json(models.parse(inner))  # a typed model's fields, as the bridge writes
            assert fast(model) == stdlib(model)
    # What orjson cannot encode goes to the standard library: the same text, no error.
    odd = {1: "int key", "big": 2**70}
    assert fast(odd) == stdlib(odd) == b'{"1":"int key","big":1180591620717411303424}'
