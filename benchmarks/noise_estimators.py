"""Noise estimators on tuning images: estimate / true sigma for the wavelet MAD and the patch PCA (issues 18, 35).

    .venv/bin/python -m benchmarks.noise_estimators [--crops 8] [--out benchmarks/results/noise-estimators/TABLE.md]

Colour: random square crops (128 px to 500 px, seeded) of scikit-image's colour photographs that no
report uses (immunohistochemistry, rocket, hubble_deep_field, retina, the left view of
stereo_motorcycle), resized as a run does. Grey: scikit-image's grey images. White Gaussian noise of
sigma 15 and 25 (0-255 scale) at 64 and 128 px. The report images (astronaut, chelsea/cat, coffee) are
left out so that the estimator is not chosen on them.

Beside ours, deepinv 0.5.0's ``PatchCovarianceNoiseEstimator`` (the same Chen-Zhu-Heng estimator), as
shipped (8x8 patches, stride 3) and with our patch (5x5) and stride (1); its
``WaveletNoiseEstimator`` needs ptwt and computes the Donoho-Johnstone MAD that our wavelet MAD takes from
scikit-image already.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from aseqdip.io import load_image
from aseqdip.physics.noise_level import patch_pca_sigma, wavelet_mad

COLOUR = ("immunohistochemistry", "rocket", "hubble_deep_field", "retina", "stereo_motorcycle")
GREY = ("camera", "coins", "moon", "page", "text", "brick", "grass", "gravel", "cell", "horse")


def deepinv_patch_covariance(y: torch.Tensor, patch: int | None = None, stride: int | None = None) -> float:
    """deepinv's estimator as shipped (8x8 patches, stride 3), or with ``patch`` and ``stride`` given."""
    import deepinv as dinv

    estimator = dinv.models.PatchCovarianceNoiseEstimator
    if patch is None:
        return float(estimator()(y).mean())
    return float(estimator.estimate_noise(y.float(), patch_size=patch, stride=stride).mean())


ESTIMATORS = {"wavelet MAD": wavelet_mad, "patch PCA 5x5": lambda y: patch_pca_sigma(y, 5),
              "patch PCA 7x7": lambda y: patch_pca_sigma(y, 7), "deepinv PatchCovariance": deepinv_patch_covariance,
              "deepinv PatchCovariance 5x5 stride 1": lambda y: deepinv_patch_covariance(y, 5, 1)}


def colour_crops(folder: Path, per_image: int, seed: int = 0) -> list[str]:
    """Seeded random square crops of the colour photographs, written as PNG files."""
    import skimage.data
    from skimage.io import imsave

    rng = np.random.default_rng(seed)
    paths = []
    for name in COLOUR:
        image = getattr(skimage.data, name)()
        image = image[0] if isinstance(image, tuple) else image
        h, w = image.shape[:2]
        for k in range(per_image):
            side = int(rng.integers(128, min(h, w, 500) + 1))
            i, j = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            path = folder / f"{name}-{k}.png"
            imsave(path, image[i:i + side, j:j + side], check_contrast=False)
            paths.append(str(path))
    return paths


def errors(specs: list[str], size: int, sigma: float, grayscale: bool) -> dict[str, np.ndarray]:
    """Relative error (estimate / true - 1) of every estimator on every image."""
    out: dict[str, list[float]] = {name: [] for name in ESTIMATORS}
    for spec in specs:
        x = load_image(spec, size=size, grayscale=grayscale)
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)) * sigma / 255
        for name, estimate in ESTIMATORS.items():
            value = estimate(x + noise)
            out[name].append(np.nan if value is None else value * 255 / sigma - 1)
    return {name: np.array(v) for name, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--crops", type=int, default=8, help="crops per colour photograph")
    p.add_argument("--out", type=Path, default=None, help="write the table here (Markdown)")
    args = p.parse_args(argv)
    lines = ["| images | size | sigma | estimator | mean error | mean abs error | max abs error |",
             "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        groups = {f"colour crops ({args.crops * len(COLOUR)})": (colour_crops(Path(tmp), args.crops), False),
                  f"grey ({len(GREY)})": ([f"skimage:{n}" for n in GREY], True)}
        for label, (specs, grey) in groups.items():
            for size in (64, 128):
                for sigma in (15, 25):
                    for name, e in errors(specs, size, sigma, grey).items():
                        lines.append(f"| {label} | {size} | {sigma:g} | {name} | {np.nanmean(e):+.1%} | "
                                     f"{np.nanmean(np.abs(e)):.1%} | {np.nanmax(np.abs(e)):.1%} |")
                        print(lines[-1], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
