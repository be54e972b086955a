"""The reactive layer: shared ref-counted connections, reconnection, delivery."""
