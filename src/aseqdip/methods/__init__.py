"""Reconstruction methods: each is a small set of hooks on the shared loop (engine/loop.py), in one module.

Every module of this package is imported here, and each registers its method (``@register_method``, with
the options it offers): a new method is one new file. ``METHODS`` maps ``--method`` names to classes.
"""

import importlib
import pkgutil

from .aseqdip import ASeqDIP
from .base import DIPMethod, squared_error
from .cs import L1WaveletCS
from .dip import VanillaDIP
from .esdip import ESDIP
from .fbp import FBP
from .refguided import RefGuidedDIP
from .registry import METHODS, Option, register_method
from .rethinking import RethinkingDIP
from .selfguided import SelfGuidedDIP
from .sgld import SGLDDIP
from .tvdip import TVDIP

for _module in pkgutil.iter_modules(__path__):  # a method added as a new module registers itself on import
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ASeqDIP", "DIPMethod", "ESDIP", "FBP", "L1WaveletCS", "METHODS", "Option", "RefGuidedDIP", "RethinkingDIP", "SGLDDIP",
           "SelfGuidedDIP", "TVDIP", "VanillaDIP", "register_method", "squared_error"]
