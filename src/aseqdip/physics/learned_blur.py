"""Bring your own blur network: y = G(x, code) + n for any torch module G(sharp image, kernel code).

The code is drawn once, from a seeded generator, and kept as a buffer: the operator is the same
function at every call (DPS draws a new code inside every forward call, which makes its "operator"
random). Networks load from

- a TorchScript file (``torch.jit.load``: compiled code and tensors, no Python pickles), or
- a state dict read with ``torch.load(..., weights_only=True)`` into a known architecture (BKSE's
  kernel wizard by default) with strict key and shape matching.

Nothing else is accepted: a fully pickled model is refused, since unpickling can run arbitrary code.
"""

from __future__ import annotations

import json
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import deepinv as dinv
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserInputError
from .bkse import CODE_SCALE, CODE_STRIDE, GOPRO_WVAE, KernelWizard, random_code

META_FILE = "aseqdip.json"  # TorchScript extra file with code_channels, code_stride, value_range


class LearnedBlur(dinv.physics.Physics):
    """y = clamp(G(x, code)) + n on [0, 1] images, for a frozen network G.

    ``value_range`` is the range G expects its images in: x in [0, 1] is mapped to it before G and
    back after (BKSE works on [0, 1], so nothing changes for it). The image is padded (replicate) to
    a multiple of ``multiple`` pixels for G and cropped back. ``clamp`` clips G's output to [0, 1],
    as DPS does. ``sigma`` is the noise std on the [0, 1] scale.
    """

    def __init__(self, net: nn.Module, code: torch.Tensor, sigma: float = 0.0,
                 value_range: tuple[float, float] = (0.0, 1.0), multiple: int = 1, clamp: bool = True,
                 rng: torch.Generator | None = None) -> None:
        if sigma < 0:
            raise UserInputError(f"noise std must be >= 0, got {sigma:g}")
        lo, hi = value_range
        if not hi > lo:
            raise UserInputError(f"value range must be increasing, got {value_range}")
        super().__init__(noise_model=dinv.physics.GaussianNoise(sigma, rng=rng) if sigma > 0 else None)
        self.net = net.eval()
        for param in self.net.parameters():  # frozen (ScriptModules have no requires_grad_)
            param.requires_grad_(False)
        self.register_buffer("code", code.float())
        self.sigma, self.value_range, self.multiple, self.clamp = sigma, (float(lo), float(hi)), multiple, clamp

    def A(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        self.update_parameters(**kwargs)
        h, w = x.shape[-2:]
        ph, pw = -h % self.multiple, -w % self.multiple
        top, left = ph // 2, pw // 2
        if ph or pw:
            x = F.pad(x, (left, pw - left, top, ph - top), mode="replicate")
        lo, hi = self.value_range
        out = (self.net(lo + (hi - lo) * x, self.code) - lo) / (hi - lo)
        out = out[..., top : top + h, left : left + w]
        return out.clamp(0.0, 1.0) if self.clamp else out


def network_meta(net: nn.Module, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Code shape and value range of ``net``: from ``meta``, else its attributes, else BKSE's."""
    meta = dict(meta or {})
    out = {"code_channels": getattr(net, "code_channels", 8 * GOPRO_WVAE.nf),
           "code_stride": getattr(net, "code_stride", CODE_STRIDE),
           "value_range": list(getattr(net, "value_range", (0.0, 1.0)))}
    out.update({k: v for k, v in meta.items() if k in out})
    return out


def learned_blur(net: nn.Module, img_size: tuple[int, int, int], generator: torch.Generator,
                 sigma: float = 0.0, meta: Mapping[str, Any] | None = None, code_scale: float = CODE_SCALE,
                 rng: torch.Generator | None = None) -> LearnedBlur:
    """A :class:`LearnedBlur` for images of ``img_size`` with a seeded code ``code_scale * N(0, I)``."""
    info = network_meta(net, meta)
    stride = int(info["code_stride"])
    code = random_code(int(info["code_channels"]), img_size[-2], img_size[-1], generator, stride, code_scale)
    return LearnedBlur(net, code, sigma=sigma, value_range=tuple(info["value_range"]), multiple=stride, rng=rng)


# ---- loading ---------------------------------------------------------------------------------
def is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip holding compiled code and constants (a state dict has neither)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def _as_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserInputError(f"{source}: not a state dict (expected a mapping from parameter names to tensors)")
    return dict(obj)


def first_mismatch(expected: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor]) -> str | None:
    """The first difference between two state dicts' keys and shapes, in the architecture's order."""
    for key, ref in expected.items():
        if key not in got:
            return f"key {key!r} is missing from the checkpoint"
        if tuple(got[key].shape) != tuple(ref.shape):
            return f"{key!r} has shape {tuple(got[key].shape)} in the checkpoint, the architecture expects {tuple(ref.shape)}"
    extra = [k for k in got if k not in expected]
    return f"unexpected key {extra[0]!r} in the checkpoint" if extra else None


def check_state_dict(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], source: str,
                     name: str) -> None:
    """Refuse ``state`` unless its keys and shapes are exactly ``expected``'s, naming the first mismatch."""
    problem = first_mismatch(expected, state)
    if problem is None:
        return
    n_bad = sum(1 for k, v in expected.items() if k not in state or tuple(state[k].shape) != tuple(v.shape))
    n_bad += sum(1 for k in state if k not in expected)
    raise UserInputError(f"{source}: checkpoint does not match {name}: {problem} "
                         f"({n_bad} mismatch{'es' if n_bad != 1 else ''} in all)")


def load_state_dict_strict(net: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    """Load ``state`` into ``net`` with strict keys and shapes."""
    check_state_dict(net.state_dict(), state, source, type(net).__name__)
    net.load_state_dict(state, strict=True)
    return net


def load_blur_network(path: str | Path, architecture: nn.Module | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Read a blur network from ``path``: a TorchScript file, or a state dict for ``architecture``.

    ``architecture`` defaults to BKSE's kernel wizard with the GOPRO_wVAE options; keys and shapes are
    compared on the meta device first, so a wrong checkpoint is refused before 460 MB are allocated.
    Returns the network and its metadata (code shape, value range) for :func:`learned_blur`.
    """
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"{path}: no such file")
    if p.is_dir():
        raise UserInputError(f"{path}: is a directory, not a checkpoint")
    if is_torchscript(p):
        extra = {META_FILE: ""}
        try:
            with warnings.catch_warnings():  # TorchScript is deprecated upstream but still the portable format
                warnings.simplefilter("ignore", FutureWarning)
                net = torch.jit.load(str(p), map_location="cpu", _extra_files=extra)
        except Exception as exc:  # noqa: BLE001 - torch raises many types for bad archives
            raise UserInputError(f"{path}: not a loadable TorchScript file ({type(exc).__name__})") from None
        try:
            meta = json.loads(extra[META_FILE]) if extra[META_FILE] else {}
        except (ValueError, UnicodeDecodeError):
            raise UserInputError(f"{path}: its {META_FILE} metadata is not valid JSON") from None
        return net, network_meta(net, meta)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():  # garbage, not a pickle of objects
            raise UserInputError(f"{path}: not a PyTorch checkpoint (expected a state dict saved with torch.save, "
                                 f"or a TorchScript file)") from None
        raise UserInputError(f"{path}: the checkpoint holds Python objects, not only tensors; refused, since "
                             f"unpickling them could run arbitrary code (save a state dict or TorchScript)") from None
    except Exception as exc:  # noqa: BLE001 - RuntimeError, EOFError, KeyError ... for files that are not checkpoints
        raise UserInputError(f"{path}: not a PyTorch checkpoint (expected a state dict saved with torch.save, "
                             f"or a TorchScript file; {type(exc).__name__})") from None
    state = _as_state_dict(obj, str(path))
    if architecture is None:
        with torch.device("meta"):
            probe = KernelWizard(GOPRO_WVAE)
        check_state_dict(probe.state_dict(), state, str(path), "BKSE's kernel wizard (GOPRO_wVAE)")
        architecture = KernelWizard(GOPRO_WVAE)
    net = load_state_dict_strict(architecture, state, str(path))
    return net, network_meta(net)


def save_torchscript(net: nn.Module, path: str | Path, example_size: tuple[int, int] = (128, 128)) -> None:
    """Trace ``net`` (G(x, code)) and save it with its code shape and value range as metadata."""
    info = network_meta(net)
    h, w = example_size
    x = torch.rand(1, getattr(getattr(net, "cfg", None), "image_channels", 3), h, w)
    code = random_code(int(info["code_channels"]), h, w, torch.Generator().manual_seed(0), int(info["code_stride"]))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(net.eval(), (x, code), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={META_FILE: json.dumps(info)})


__all__ = ["LearnedBlur", "learned_blur", "load_blur_network", "network_meta", "save_torchscript"]
