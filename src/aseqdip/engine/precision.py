"""Device and numeric precision: one place decides where and how the network runs.

Only the network's forward pass runs under bf16 autocast; its output is cast back to fp32 before the
physics and the loss, so FFTs, Radon transforms and the data term stay in full precision.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import lru_cache

import torch

PRECISIONS = ("auto", "fp32", "bf16")


@lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True where the CPU has native bf16 matrix units (AMX-BF16 or AVX512-BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def fused_adam_supported(device: torch.device) -> bool:
    """Whether torch's fused Adam kernel runs on ``device``: the same update in one kernel instead of a
    dozen small ops per weight tensor (measured 25 -> 5 ms per step for the medium U-Net's 4.3 M weights
    on one CPU core; on a GPU it also removes hundreds of kernel launches per step)."""
    return device.type in ("cpu", "cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# On a GPU, bf16 autocast (with channels_last) pays only on large images. Measured on an NVIDIA H200
# (benchmarks/results/device-h200/speed-paper-h200.json, aSeqDIP's step with the task's U-Net): per step,
# fp32 (TF32) 7.8 / 7.2 / 5.6 ms against bf16 11.3 / 10.8 / 8.4 ms at 320 (MRI), 256 (CT) and 256 px
# (denoising), where the step is bound by kernel launches and bf16 adds casts; at 512 px bf16 was the
# fastest, 7.2 against 11.2 ms. So auto keeps fp32 below 512 x 512 pixels.
CUDA_BF16_MIN_PIXELS = 512 * 512


@dataclass(frozen=True)
class Precision:
    """How the network runs: dtype under autocast and memory format."""

    device: torch.device
    bf16: bool

    @classmethod
    def choose(cls, device: torch.device, precision: str = "auto", pixels: int | None = None) -> Precision:
        """``auto``: bf16 on CPUs with bf16 arithmetic, and on GPUs for images of at least
        :data:`CUDA_BF16_MIN_PIXELS` (``pixels`` = H x W; unknown counts as large)."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if precision == "auto" and os.environ.get("ASEQDIP_AUTO_PRECISION") in ("fp32", "bf16"):
            precision = os.environ["ASEQDIP_AUTO_PRECISION"]  # what auto picks, pinned (the tests pin fp32)
        if precision == "auto":
            if device.type == "cuda":
                large = pixels is None or pixels >= CUDA_BF16_MIN_PIXELS
                bf16 = large and torch.cuda.is_bf16_supported()
            else:
                bf16 = cpu_has_fast_bf16()
        else:
            bf16 = precision == "bf16"
        return cls(device, bf16)

    @property
    def name(self) -> str:
        return "bf16" if self.bf16 else "fp32"

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.bf16 else torch.contiguous_format

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def prepare_network(self, net: torch.nn.Module) -> torch.nn.Module:
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        return net.to(self.device, memory_format=self.memory_format)

    def prepare_input(self, z: torch.Tensor) -> torch.Tensor:
        z = z.to(self.device)
        return z.contiguous(memory_format=self.memory_format) if z.dim() == 4 else z
