"""Reconstruction methods: each is a small set of hooks on the shared loop (engine/loop.py)."""

from .aseqdip import ASeqDIP
from .base import DIPMethod, squared_error
from .cs import L1WaveletCS
from .dip import VanillaDIP
from .esdip import ESDIP
from .fbp import FBP
from .refguided import RefGuidedDIP
from .rethinking import RethinkingDIP
from .selfguided import SelfGuidedDIP
from .sgld import SGLDDIP
from .tvdip import TVDIP

METHODS: dict[str, type[DIPMethod]] = {"aseqdip": ASeqDIP, "dip": VanillaDIP}
METHODS[L1WaveletCS.name] = L1WaveletCS  # type: ignore[assignment]  # MRI's classical reference, no network (issue 3)
METHODS[FBP.name] = FBP  # type: ignore[assignment]  # CT's closed-form baseline, no network (issue 4)
# the paper's DIP baselines (issue 6)
METHODS.update({cls.name: cls for cls in (SelfGuidedDIP, TVDIP, ESDIP, SGLDDIP, RefGuidedDIP, RethinkingDIP)})

__all__ = ["ASeqDIP", "DIPMethod", "ESDIP", "FBP", "METHODS", "RefGuidedDIP", "RethinkingDIP", "SGLDDIP", "SelfGuidedDIP",
           "TVDIP", "VanillaDIP", "squared_error"]
