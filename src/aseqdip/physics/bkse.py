"""The BKSE "kernel wizard" (Tran et al., "Explore image deblurring via encoded blur kernel space", CVPR 2021).

BKSE learns a blur generator G(x, k): a sharp image x and a kernel code k give a blurred image. DPS
(Chung et al., ICLR 2023) and aSeqDIP use it, with the GOPRO_wVAE weights, as their non-linear
deblurring operator y = G(x, k) + n with a random code k ~ 1.2 N(0, I).

This is our own implementation of that architecture. Module names, layer order and shapes follow the
public BKSE code (``models/kernel_encoding/kernel_wizard.py`` and its backbones, GOPRO_wVAE options)
so that a BKSE state dict loads with strict key matching; the real checkpoint was not available to
us, so this is checked against the layout read from the code, not against the file itself.

Facts of the architecture that matter to users:

- images are on [0, 1] (DPS maps its [-1, 1] images to [0, 1] before calling G, and back after);
- H and W must be multiples of 128 (two stride-2 convolutions, then a five-level U-Net); the code
  has ``8 * nf`` channels (512) and spatial size H/128 x W/128 (2 x 2 for DPS's 256 x 256 images);
- the kernel extractor (the encoder F(sharp, blurred) -> code) is part of the checkpoint, so it is
  built too; :meth:`KernelWizard.encode` runs it, :meth:`KernelWizard.forward` is the generator G.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class BKSEConfig:
    """Hyper-parameters of the kernel wizard; the defaults are BKSE's GOPRO_wVAE options."""

    image_channels: int = 3  # input_nc
    nf: int = 64
    front_blocks: int = 10  # front_RBs
    back_blocks: int = 20  # back_RBs
    kernel_dim: int = 512
    use_vae: bool = True
    use_sharp: bool = True
    extractor_blocks: int = 4  # KernelExtractor.n_blocks
    recon_nf: int = 64  # width after the upsampling, hard-coded to 64 in BKSE

    def __post_init__(self) -> None:
        if self.kernel_dim != 8 * self.nf:
            raise ValueError(f"the generator needs kernel_dim == 8 * nf, got kernel_dim={self.kernel_dim}, nf={self.nf}")

    def as_dict(self) -> dict:
        return asdict(self)


GOPRO_WVAE = BKSEConfig()
CODE_STRIDE = 128  # image pixels per code pixel
CODE_SCALE = 1.2  # DPS draws the code as 1.2 * N(0, I)


class ResidualBlockNoBN(nn.Module):
    """x + conv(relu(conv(x))), 3x3 convolutions with bias."""

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


class ReflectResBlock(nn.Module):
    """x + [pad, conv, relu, pad, conv](x) with reflection padding and no bias (norm 'none')."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), nn.Identity(), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class KernelExtractor(nn.Module):
    """F(sharp features, blurred features) -> (mean, log-variance) of the kernel code."""

    def __init__(self, cfg: BKSEConfig) -> None:
        super().__init__()
        nf = cfg.nf
        self.kernel_dim = cfg.kernel_dim
        self.use_vae = cfg.use_vae
        self.use_sharp = cfg.use_sharp
        out_nc = 2 * cfg.kernel_dim if cfg.use_vae else cfg.kernel_dim
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(2 * nf if cfg.use_sharp else nf, nf, 7, bias=False),
                                   nn.Identity(), nn.ReLU()]
        for i in range(5):  # five stride-2 convolutions, widths capped at the code width
            c_in, c_out = min(nf * 2**i, out_nc), min(nf * 2 ** (i + 1), out_nc)
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.Identity(), nn.ReLU()]
        layers += [ReflectResBlock(out_nc) for _ in range(cfg.extractor_blocks)]
        self.model = nn.Sequential(*layers)

    def forward(self, sharp: torch.Tensor, blurred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(torch.cat((sharp, blurred), dim=1) if self.use_sharp else blurred)
        if self.use_vae:
            return out[:, : self.kernel_dim], out[:, self.kernel_dim :]
        return out, torch.zeros_like(out)


class UNetLevel(nn.Module):
    """One level of the adapter's U-Net: down (4x4 stride-2 conv), the inner levels, up (4x4 transposed conv).

    ``kind`` is ``outer`` (no activation before the down conv, tanh after the up conv, no skip),
    ``middle`` or ``inner`` (the code is concatenated at the bottom). As in BKSE, whose leaky ReLU
    acts in place on the level's input, the skip connection carries leaky_relu(x), not x.
    """

    def __init__(self, outer_nc: int, inner_nc: int, kind: str, input_nc: int | None = None,
                 submodule: nn.Module | None = None) -> None:
        super().__init__()
        self.kind = kind
        input_nc = outer_nc if input_nc is None else input_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=False)
        up_conv = nn.ConvTranspose2d(2 * inner_nc, outer_nc, 4, stride=2, padding=1, bias=kind == "outer")
        if kind == "outer":
            self.down = nn.Sequential(down_conv)
            self.submodule = submodule
            self.up = nn.Sequential(nn.ReLU(), up_conv, nn.Tanh())
        elif kind == "inner":
            self.down = nn.Sequential(nn.LeakyReLU(0.2), down_conv)
            self.up = nn.Sequential(nn.ReLU(), up_conv, nn.Identity())
        else:
            self.down = nn.Sequential(nn.LeakyReLU(0.2), down_conv, nn.Identity())
            self.submodule = submodule
            self.up = nn.Sequential(nn.ReLU(), up_conv, nn.Identity())

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        if self.kind == "outer":
            return self.up(self.submodule(self.down(x), code))
        skip = self.down[0](x)
        inner = self.down[1:](skip)
        inner = torch.cat((inner, code), dim=1) if self.kind == "inner" else self.submodule(inner, code)
        return torch.cat((self.up(inner), skip), dim=1)


class KernelAdapter(nn.Module):
    """G's middle: a five-level U-Net on image features with the kernel code at its bottom."""

    def __init__(self, cfg: BKSEConfig) -> None:
        super().__init__()
        nf = cfg.nf
        level = UNetLevel(8 * nf, 8 * nf, "inner")
        level = UNetLevel(4 * nf, 8 * nf, "middle", submodule=level)
        level = UNetLevel(2 * nf, 4 * nf, "middle", submodule=level)
        level = UNetLevel(nf, 2 * nf, "middle", submodule=level)
        self.model = UNetLevel(nf, nf, "outer", input_nc=nf, submodule=level)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        return self.model(x, code)


class KernelWizard(nn.Module):
    """BKSE's blur generator G(x, code) (``forward``) and kernel encoder F (``encode``).

    ``code_channels`` and ``code_stride`` tell :class:`aseqdip.physics.learned_blur.LearnedBlur`
    the code's shape for an image of a given size.
    """

    def __init__(self, cfg: BKSEConfig = GOPRO_WVAE) -> None:
        super().__init__()
        self.cfg = cfg
        self.code_channels = 8 * cfg.nf
        self.code_stride = CODE_STRIDE
        nf, lrelu = cfg.nf, nn.LeakyReLU(0.1)
        self.feature_extractor = nn.Sequential(
            nn.Conv2d(cfg.image_channels, nf, 3, 1, 1), lrelu,
            nn.Conv2d(nf, nf, 3, 2, 1), lrelu,
            nn.Conv2d(nf, nf, 3, 2, 1), lrelu,
            *[ResidualBlockNoBN(nf) for _ in range(cfg.front_blocks)],
        )
        self.kernel_extractor = KernelExtractor(cfg)
        self.adapter = KernelAdapter(cfg)
        r = cfg.recon_nf
        self.recon_trunk = nn.Sequential(
            *[ResidualBlockNoBN(nf) for _ in range(cfg.back_blocks)],
            nn.Conv2d(nf, 4 * nf, 3, 1, 1), nn.PixelShuffle(2), lrelu,
            nn.Conv2d(nf, 4 * r, 3, 1, 1), nn.PixelShuffle(2), lrelu,
            nn.Conv2d(r, r, 3, 1, 1), lrelu,
            nn.Conv2d(r, cfg.image_channels, 3, 1, 1),
        )

    def forward(self, sharp: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """G: blur ``sharp`` ((B, C, H, W) on [0, 1], H and W multiples of 128) with ``code``."""
        out = self.recon_trunk(self.adapter(self.feature_extractor(sharp), code))
        return out + sharp

    def encode(self, sharp: torch.Tensor, blurred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """F: the (mean, log-variance) of the code that turns ``sharp`` into ``blurred``."""
        return self.kernel_extractor(self.feature_extractor(sharp), self.feature_extractor(blurred))


def random_code(channels: int, height: int, width: int, generator: torch.Generator,
                stride: int = CODE_STRIDE, scale: float = CODE_SCALE) -> torch.Tensor:
    """A seeded kernel code for an image of ``height`` x ``width`` (rounded up to the stride), as in DPS."""
    shape = (1, channels, -(-height // stride), -(-width // stride))
    return torch.randn(shape, generator=generator) * scale


__all__ = ["BKSEConfig", "CODE_SCALE", "CODE_STRIDE", "GOPRO_WVAE", "KernelWizard", "random_code"]
