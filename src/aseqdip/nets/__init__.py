"""Networks: the authors' U-Nets and DIP's skip network; each accepts any size and channel count."""

from .init import init_weights
from .scale import MatchedScale
from .skip import SkipNet, skip_net
from .unet import UNet, medium_unet, shallow_unet

NETWORKS = {"medium_unet": medium_unet, "shallow_unet": shallow_unet, "skip": skip_net}

__all__ = ["NETWORKS", "MatchedScale", "SkipNet", "UNet", "init_weights", "medium_unet", "shallow_unet", "skip_net"]
