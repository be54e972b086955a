"""What the benchmarks share: a self-signed certificate, the burst server process, one measured
run, and table formatting.

``throughput.py`` and ``peers.py`` import it as a sibling module (both run as scripts, so their
directory is on ``sys.path``). The server itself is ``_tls_burst_server.py``, a process of its
own: see its docstring for what it sends and how a run is released.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

SERVER_SCRIPT = Path(__file__).with_name("_tls_burst_server.py")


@dataclass(frozen=True, slots=True)
class Run:
    """One measured burst: ``messages`` counted over ``wall`` seconds and ``cpu`` CPU seconds."""

    messages: int
    wall: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.messages / self.wall

    @property
    def cpu_per_100k(self) -> float:
        return self.cpu / self.messages * 100_000


# -- certificate and server ------------------------------------------------------------------


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, valid for a day: (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return cert, key
    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private_key, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


def client_context(cert: Path) -> ssl.SSLContext:
    """A verifying client context (hostname included) that trusts only ``cert``."""
    return ssl.create_default_context(cafile=str(cert))


class BurstServer:
    """The burst server process for one transport: every run gets a fresh base URL
    (``<scheme>://127.0.0.1:<port>/run<id>``) and starts its burst with the returned ``go``."""

    def __init__(self, proc: subprocess.Popen[str], scheme: str, port: int) -> None:
        self._proc = proc
        self.scheme = scheme
        self.port = port
        self._runs = 0

    def run_url(self) -> tuple[str, Callable[[], None]]:
        self._runs += 1
        run = self._runs
        stdin = self._proc.stdin
        assert stdin is not None

        def go() -> None:
            # The server holds the upgraded connection until this line: nothing is sent before
            # the client is ready to count.
            stdin.write(f"go {run}\n")
            stdin.flush()

        return f"{self.scheme}://127.0.0.1:{self.port}/run{run}", go


@contextlib.contextmanager
def burst_server(
    messages: int, cert: Path | None, key: Path | None, *, keep_open: bool = False
) -> Iterator[BurstServer]:
    """Start the burst server process (TLS when given a certificate); terminate it on exit.
    ``keep_open``: no close frame after a burst (the client ends the connection)."""
    command = [sys.executable, str(SERVER_SCRIPT), "--messages", str(messages)]
    if cert is not None and key is not None:
        command += ["--cert", str(cert), "--key", str(key)]
    if keep_open:
        command.append("--keep-open")
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the burst is built and the port listens
        if not line.startswith("PORT "):
            raise RuntimeError(f"burst server failed to start (said {line!r})")
        yield BurstServer(proc, "wss" if cert is not None else "ws", int(line.split()[1]))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


# -- tables ----------------------------------------------------------------------------------


def format_plain(cells: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = []
    for index, r in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_rst(cells: list[list[str]]) -> str:
    """An RST simple table."""
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    rule = "  ".join("=" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join([rule, body[0], rule, *body[1:], rule])


def format_markdown(cells: list[list[str]]) -> str:
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join(["---"] * len(cells[0])) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(lines)
