"""rxbinance: Binance WebSocket streams as hot, shared, self-healing ReactiveX Observables."""

__version__ = "0.1.0"

__all__ = ["__version__"]
