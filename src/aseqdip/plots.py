"""Figures a person would rather look at than read: PSNR against iteration, and the images side by side."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .io.outputs import atomic_write

if TYPE_CHECKING:  # numpy only in annotations: matplotlib and numpy are imported where a figure is drawn
    import numpy as np


def psnr_curve(path: Path, history: dict[str, list[float]], *, title: str, returned_iteration: int | None = None,
               measurement_psnr: float | None = None) -> bool:
    """Plot the monitored PSNR (an oracle: it needs the ground truth) and mark the returned iterate.

    Returns False, writing nothing, when the run recorded no PSNR (no ground truth known).
    """
    if "psnr" not in history:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    ax.plot(history["psnr_iteration"], history["psnr"], lw=1.2, label="PSNR of current estimate (oracle monitor)")
    if measurement_psnr is not None:
        ax.axhline(measurement_psnr, color="grey", ls=":", lw=1, label="measurement / simple reconstruction")
    if returned_iteration is not None:
        ax.axvline(returned_iteration, color="C3", ls="--", lw=1, label=f"returned (iteration {returned_iteration})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    _save(fig, path)
    return True


def noise_covariance_figure(path: Path, covariance: np.ndarray, *, title: str) -> None:
    """The coil noise covariance as two heat maps: |Psi| and the correlation |Psi_ij| / sqrt(Psi_ii Psi_jj).

    A user sees at a glance whether every coil was read (no empty row), how unequal their noise levels
    are (the diagonal) and how strongly neighbouring coils share noise (off the diagonal).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cov = np.asarray(covariance)
    diag = np.sqrt(np.clip(np.real(np.diag(cov)), 1e-30, None))
    correlation = np.abs(cov) / (diag[:, None] * diag[None, :])
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), dpi=120)
    for ax, data, label in ((axes[0], np.abs(cov), "|covariance|"), (axes[1], correlation, "|correlation|")):
        shown = ax.imshow(data, cmap="viridis", vmin=0, vmax=1 if data is correlation else None)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("coil")
        ax.set_ylabel("coil")
        fig.colorbar(shown, ax=ax, fraction=0.046)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def error_box(error: np.ndarray, fraction: float = 0.25) -> tuple[int, int, int]:
    """(top, left, side) of the square of ``fraction`` of the image's side where the mean error is largest:
    the region the comparison figure zooms into (as the paper's Figure 5 does)."""
    import numpy as np
    from scipy.ndimage import uniform_filter

    side = max(4, int(round(min(error.shape) * fraction)))
    local = uniform_filter(error.astype(np.float64), size=side, mode="constant")
    half = side // 2
    inner = local[half : error.shape[0] - side + half + 1, half : error.shape[1] - side + half + 1]
    top, left = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return int(top), int(left), side


def comparison_figure(path: Path, panels: list[tuple[str, np.ndarray, str]], *, error: np.ndarray | None,
                      error_label: str = "", title: str = "", zoom: bool = False) -> None:
    """Images side by side on one grey scale ([0, 1]), then the absolute error of the returned image (comparison.png).

    ``panels`` are (name, image in [0, 1], caption under it: PSNR/SSIM); ``error`` is |returned - truth| (per
    pixel, channels averaged) shown with its own colour bar; ``zoom`` adds the error inside the box where it
    is largest, drawn on the returned image (MRI and CT, as the paper's Figure 5).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    count = len(panels) + (error is not None) + (error is not None and zoom)
    fig, axes = plt.subplots(1, count, figsize=(2.6 * count, 3.0), dpi=120, squeeze=False)
    axes = list(axes[0])
    box = error_box(error) if error is not None and zoom else None
    for ax, (name, image, caption) in zip(axes, panels):
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(caption, fontsize=8)
        if box is not None and name.startswith("returned"):
            ax.add_patch(Rectangle((box[1] - 0.5, box[0] - 0.5), box[2], box[2], fill=False, ec="C3", lw=1))
    if error is not None:
        vmax = float(error.max()) or 1.0
        ax = axes[len(panels)]
        shown = ax.imshow(error, cmap="inferno", vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_title("|returned - truth|", fontsize=9)
        ax.set_xlabel(error_label, fontsize=8)
        fig.colorbar(shown, ax=ax, fraction=0.046)
        if box is not None:
            top, left, side = box
            ax.add_patch(Rectangle((left - 0.5, top - 0.5), side, side, fill=False, ec="C2", lw=1))
            ax = axes[len(panels) + 1]
            ax.imshow(error[top : top + side, left : left + side], cmap="inferno", vmin=0.0, vmax=vmax,
                      interpolation="nearest")
            ax.set_title("error, zoomed (red box)", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _save(fig: Any, path: Path) -> None:
    """Write ``fig`` as a PNG at ``path`` atomically, and free it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(Path(path), lambda f: f.write(buf.getvalue()))
