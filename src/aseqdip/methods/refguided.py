"""Ref-Guided DIP (Zhao, Li, Zhou, Hao, Zhang, "Reference-driven compressed sensing MR image reconstruction using
deep convolutional neural networks without pre-training", Sensors 2020).

Vanilla DIP whose fixed input is a reference image instead of noise. The reference is picked from a
user-given set as the one nearest (Euclidean distance) to the first estimate x0 (the noisy image,
A^H y or FBP), as the aSeqDIP paper does (Appendix C.6). Data-dependent: it needs ``references``, a
folder of images (CLI ``--references DIR``) or a list of tensors. The optimiser settings are Vanilla
DIP's (Adam, lr 0.01).

Each reference is brought to x0's layout before comparing: resized to x0's height and width, its
channels matched (grey <-> colour, or grey into the real part of a two-channel complex image), and its
intensity scaled so that its largest magnitude equals x0's; the distance then compares structure, not
units.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..errors import UserInputError
from ..io.images import load_image
from .dip import VanillaDIP
from .registry import Option, register_method

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy")


def reference_files(folder: str | Path) -> list[Path]:
    """The image files in ``folder`` (sorted by name); a clear error when there are none."""
    path = Path(folder)
    if not path.is_dir():
        raise UserInputError(f"--references {folder}: not a folder of reference images")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserInputError(f"--references {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    return files


def match_layout(ref: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``ref`` (1, C, H, W) in [0, 1] resized, channel-matched and scaled to look like ``like``."""
    mag = like.abs() if torch.is_complex(like) else like
    channels, size = like.shape[1], tuple(like.shape[-2:])
    ref = ref.to(dtype=torch.float32, device=like.device)
    if tuple(ref.shape[-2:]) != size:
        ref = torch.nn.functional.interpolate(ref, size=size, mode="bicubic", antialias=True, align_corners=False)
    grey = ref.mean(dim=1, keepdim=True)
    if ref.shape[1] != channels:
        if channels == 2 and not torch.is_complex(like):  # real/imaginary channels: the reference is the real part
            ref = torch.cat([grey, torch.zeros_like(grey)], dim=1)
        else:
            ref = grey.expand(-1, channels, -1, -1)
    peak = ref.abs().max()
    if peak > 0:
        ref = ref * (mag.abs().max() / peak)
    return ref.to(like.dtype) if torch.is_complex(like) else ref


def nearest_reference(x0: torch.Tensor, references: Sequence[torch.Tensor]) -> tuple[int, torch.Tensor]:
    """Index and matched copy of the reference nearest to ``x0`` in Euclidean distance."""
    best, best_dist, best_ref = -1, float("inf"), None
    for i, ref in enumerate(references):
        matched = match_layout(ref, x0)
        dist = float((matched - x0).abs().square().sum())
        if dist < best_dist:
            best, best_dist, best_ref = i, dist, matched
    return best, best_ref


@register_method
class RefGuidedDIP(VanillaDIP):
    """Vanilla DIP with the nearest reference image as its fixed input."""

    name: ClassVar[str] = "refguided"
    options: ClassVar[tuple[Option, ...]] = (
        Option("references", str, "refguided: folder of reference images (required)", file=True),
    )

    def __init__(self, iterations: int = 4000, references: str | Path | Sequence[torch.Tensor] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(iterations=iterations, **kwargs)
        self.references = references
        self.chosen_reference: str | None = None

    def hyperparameters(self) -> dict[str, Any]:
        refs = self.references
        where = str(refs) if isinstance(refs, (str, Path)) else (f"{len(refs)} tensors" if refs is not None else None)
        return {**super().hyperparameters(), "references": where, "chosen_reference": self.chosen_reference}

    def validate(self, y: torch.Tensor, physics: Any) -> None:
        if self.references is None:
            raise UserInputError("refguided needs reference images: give --references DIR (a folder of images)")
        if isinstance(self.references, (str, Path)):
            reference_files(self.references)
        elif len(self.references) == 0:
            raise UserInputError("refguided needs at least one reference image")

    def load_references(self) -> tuple[list[torch.Tensor], list[str]]:
        """The references as (1, C, H, W) tensors in [0, 1], with names for the run record."""
        if isinstance(self.references, (str, Path)):
            files = reference_files(self.references)
            return [load_image(str(f)) for f in files], [f.name for f in files]
        tensors = [r if r.dim() == 4 else r[None] for r in self.references]
        return tensors, [f"reference {i}" for i in range(len(tensors))]

    def input_channels(self, x0: torch.Tensor) -> int:
        return x0.shape[1]

    def initial_input(self, y: torch.Tensor, physics: Any, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        refs, names = self.load_references()
        index, ref = nearest_reference(x0.detach(), refs)
        self.chosen_reference = names[index]
        return ref.real.float() if torch.is_complex(ref) else ref
