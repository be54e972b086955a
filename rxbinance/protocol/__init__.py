"""The protocol layer: pure Binance knowledge (names, endpoints, frames, books); standard library only."""
