"""Reading inputs and writing results."""

from .images import load_image, resize
from .outputs import StagedOutput, write_json, write_npy, write_png

__all__ = ["StagedOutput", "load_image", "resize", "write_json", "write_npy", "write_png"]
