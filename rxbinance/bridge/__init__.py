"""Fan Binance streams out through Redis Streams, and consume them back as Observables.

One collector process opens the sockets to Binance and :func:`publish` es each stream to a
Redis stream key; any number of processes on any number of machines :func:`consume` those
keys and get the Observables they know: the same payloads (or typed models), hot, shared and
ref-counted, healed across Redis restarts, with Gaps where something was lost, and consumer
groups to split one stream's work between machines.

Needs redis-py: ``pip install 'rxbinance[redis]'``.
"""

from rxbinance.bridge._codec import as_json
from rxbinance.bridge._consume import consume
from rxbinance.bridge._publish import DEFAULT_PREFIX, Publisher, PublishStatistics, publish
from rxbinance.bridge._redis import BridgeError

__all__ = [
    "DEFAULT_PREFIX",
    "BridgeError",
    "PublishStatistics",
    "Publisher",
    "as_json",
    "consume",
    "publish",
]
