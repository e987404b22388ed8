"""Figures a person would rather look at than read: PSNR against iteration."""

from __future__ import annotations

import io
from pathlib import Path

from .io.outputs import atomic_write


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
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(Path(path), lambda f: f.write(buf.getvalue()))
    return True


def noise_covariance_figure(path: Path, covariance: "np.ndarray", *, title: str) -> None:
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
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(Path(path), lambda f: f.write(buf.getvalue()))
