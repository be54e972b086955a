"""The protocol layer: pure Binance knowledge (names, endpoints, frames, books); stdlib only."""
