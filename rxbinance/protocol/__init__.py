"""The protocol layer: pure Binance knowledge (names, endpoints, frames, books, the WebSocket
frame reader); the standard library only, with orjson when the ``speed`` extra is installed."""
