"""The give-up helpers the pipelines and the typed operators share: re-exported from
:mod:`rxbinance.protocol.frames`, where the one implementation lives."""

from __future__ import annotations

from rxbinance.protocol.frames import give_up_error, is_give_up

__all__ = ["give_up_error", "is_give_up"]
