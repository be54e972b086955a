"""The ``rxbinance`` command line (also ``python -m rxbinance``).

Commands::

    rxbinance watch STREAM... [--pretty]      print messages (JSON lines, or a table)
    rxbinance book SYMBOL [--depth N]         a live order book ladder
    rxbinance record STREAM... -o FILE        record with receive times (gzip for .gz)
    rxbinance replay FILE [--speed X]         play a recording back, printed like watch
    rxbinance demo                            trades from the built-in simulated market

``--sim`` runs any network command against the built-in simulated market
(:class:`rxbinance.testing.FakeBinance` on 127.0.0.1), so everything works with no network.
Data goes to stdout; status (connected, reconnecting, message rate) to stderr, silenced by
``--quiet``. A failure is one line on stderr, ``rxbinance: error: ...``, and a non-zero exit
status (``--debug`` adds the traceback): 1 when the exchange, the network or a file failed, 2
for bad arguments, 130 after Ctrl-C, 141 when the reader of stdout went away, 143 after
SIGTERM. Ctrl-C acts at once: messages still queued behind a slow terminal are dropped, not
printed first. ``rxbinance --help`` and ``rxbinance COMMAND --help`` say the rest.

Layout: ``_main`` parses arguments and maps failures to exit statuses, ``_commands`` holds one
function per command, ``_connect`` builds the streams (simulated or real), ``_pump`` runs the
main-thread loop every command shares (printing, limits, status), ``_format`` and ``_ladder``
turn messages and books into text.
"""

from rxbinance.cli._main import main

__all__ = ["main"]
