"""Reconstruction methods: each is a small set of hooks on the shared loop (engine/loop.py)."""

from .aseqdip import ASeqDIP
from .base import DIPMethod, squared_error
from .dip import VanillaDIP

METHODS: dict[str, type[DIPMethod]] = {"aseqdip": ASeqDIP, "dip": VanillaDIP}

__all__ = ["ASeqDIP", "DIPMethod", "METHODS", "VanillaDIP", "squared_error"]
