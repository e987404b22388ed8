"""The paper's Table 2 (Alkhouri et al., NeurIPS 2024), typed in from the paper's text, for the report.

Each row: task, method, PSNR and SSIM as (mean, std) for setting 1 and setting 2 of Table 1, and the
run time in minutes (averaged over both settings in the paper, on an RTX 5000 GPU). Deblurring has
one setting. Methods that need training data (Score-MRI, MCG, DPS) and Ref-Guided DIP (a reference
image) are listed for reference; the benchmark does not run them.
"""

from __future__ import annotations

SOURCE = "Table 2 of the paper (PSNR dB, SSIM, run time in minutes; settings as in its Table 1)"

# task, method, (PSNR s1, std), (PSNR s2, std), (SSIM s1, std), (SSIM s2, std), minutes
_ROWS = [
    ("mri", "Score-MRI", (31.51, 0.45), (29.61, 0.44), (0.891, 0.012), (0.862, 0.014), 6.2),
    ("mri", "refguided", (33.17, 0.27), (30.23, 0.24), (0.912, 0.021), (0.873, 0.016), 2.5),
    ("mri", "tvdip", (30.52, 0.25), (29.20, 0.37), (0.872, 0.022), (0.852, 0.022), 2.5),
    ("mri", "esdip", (31.02, 0.34), (29.44, 0.45), (0.882, 0.031), (0.858, 0.028), 1.56),
    ("mri", "dip", (30.21, 0.42), (28.75, 0.33), (0.865, 0.02), (0.842, 0.022), 1.5),
    ("mri", "selfguided", (33.6, 0.23), (30.75, 0.25), (0.922, 0.008), (0.874, 0.006), 4.5),
    ("mri", "aseqdip", (34.08, 0.41), (31.34, 0.47), (0.929, 0.008), (0.887, 0.009), 2.2),
    ("ct", "MCG", (32.82, 0.52), (31.35, 0.49), (0.912, 0.08), (0.852, 0.09), 6.4),
    ("ct", "fbp", (22.92, 0.22), (19.52, 0.32), (0.75, 0.021), (0.68, 0.023), 0.2),
    ("ct", "refguided", (31.21, 0.24), (28.31, 0.42), (0.892, 0.023), (0.842, 0.021), 2.5),
    ("ct", "dip", (26.21, 0.12), (24.31, 0.34), (0.791, 0.021), (0.772, 0.012), 1.5),
    ("ct", "selfguided", (33.95, 0.32), (31.95, 0.32), (0.918, 0.02), (0.872, 0.031), 4.5),
    ("ct", "aseqdip", (34.88, 0.36), (33.09, 0.39), (0.941, 0.026), (0.92, 0.022), 2.2),
    ("denoise", "DPS", (31.02, 0.25), (28.2, 0.31), (0.912, 0.02), (0.882, 0.021), 2.5),
    ("denoise", "dip", (30.48, 0.28), (27.84, 0.32), (0.905, 0.021), (0.871, 0.030), 1.5),
    ("denoise", "sgld", (30.58, 0.34), (28.12, 0.42), (0.908, 0.021), (0.877, 0.017), 3.2),
    ("denoise", "tvdip", (30.57, 0.31), (28.47, 0.26), (0.914, 0.022), (0.882, 0.014), 2.5),
    ("denoise", "rethinking", (30.98, 0.31), (28.67, 0.25), (0.912, 0.02), (0.887, 0.03), 2.5),
    ("denoise", "esdip", (31.11, 0.23), (28.12, 0.41), (0.914, 0.017), (0.886, 0.024), 1.45),
    ("denoise", "selfguided", (31.21, 0.26), (28.31, 0.35), (0.916, 0.02), (0.891, 0.03), 3.5),
    ("denoise", "aseqdip", (31.51, 0.34), (28.97, 0.44), (0.926, 0.021), (0.908, 0.031), 2.4),
    ("inpaint", "DPS", (23.9, 0.45), (22.03, 0.36), (0.817, 0.023), (0.762, 0.021), 2.5),
    ("inpaint", "dip", (22.56, 0.31), (21.32, 0.67), (0.754, 0.023), (0.721, 0.012), 1.5),
    ("inpaint", "sgld", (23.09, 0.55), (21.41, 0.45), (0.772, 0.023), (0.732, 0.041), 2.5),
    ("inpaint", "tvdip", (22.87, 0.45), (21.64, 0.51), (0.774, 0.04), (0.742, 0.042), 2.5),
    ("inpaint", "esdip", (23.33, 0.44), (21.89, 0.28), (0.781, 0.034), (0.745, 0.041), 1.25),
    ("inpaint", "selfguided", (23.84, 0.43), (21.78, 0.52), (0.792, 0.042), (0.752, 0.064), 3.5),
    ("inpaint", "aseqdip", (24.56, 0.45), (22.57, 0.47), (0.838, 0.051), (0.778, 0.045), 2.4),
    ("deblur", "DPS", (23.40, 0.56), None, (0.776, 0.032), None, 2.24),
    ("deblur", "sgld", (19.80, 0.43), None, (0.720, 0.03), None, 3.24),
    ("deblur", "selfguided", (20.34, 0.55), None, (0.732, 0.025), None, 3.4),
    ("deblur", "aseqdip", (23.89, 0.40), None, (0.792, 0.033), None, 2.5),
]


def paper_value(task: str, setting_index: int, method: str) -> dict[str, float] | None:
    """The paper's numbers for ``method`` on ``task``'s setting 1 (index 0) or 2, or None if not in Table 2."""
    for t, m, p1, p2, s1, s2, minutes in _ROWS:
        if t == task and m == method:
            psnr, ssim = (p1, s1) if setting_index == 0 else (p2, s2)
            if psnr is None:
                return None
            return {"psnr": psnr[0], "psnr_std": psnr[1], "ssim": ssim[0], "ssim_std": ssim[1], "minutes": minutes}
    return None


def paper_rows(task: str) -> list[tuple[str, tuple, tuple, tuple, tuple, float]]:
    """All of the paper's rows for ``task`` (method, PSNR s1, PSNR s2, SSIM s1, SSIM s2, minutes)."""
    return [(m, p1, p2, s1, s2, mins) for t, m, p1, p2, s1, s2, mins in _ROWS if t == task]


# our setting labels (benchmarks/paper_plan.py) -> the column of Table 2 they match
SETTING_INDEX = {("mri", "4x"): 0, ("mri", "8x"): 1, ("ct", "18 views"): 0, ("ct", "30 views"): 1,
                 ("denoise", "sigma 15"): 0, ("denoise", "sigma 30"): 1, ("inpaint", "HIAR 0.1"): 0,
                 ("inpaint", "HIAR 0.25"): 1, ("deblur", "non-linear"): 0}


def paper_for(task: str, setting: str, method: str) -> dict[str, float] | None:
    """The paper's numbers for our (task, setting label, method), or None (e.g. sigma 25 is not in Table 2)."""
    index = SETTING_INDEX.get((task, setting))
    return None if index is None else paper_value(task, index, method)
