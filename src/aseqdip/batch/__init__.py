"""Many studies at once: ``aseqdip batch`` runs one reconstruction per study, on Ray or one at a time.

- ``studies``: which files under the input are studies, and their output names;
- ``worker``: one study, through the same code as ``aseqdip run`` / ``reconstruct``;
- ``ledger``: what is finished or failed, on disk, and ``results.csv``;
- ``executors``: one at a time in this process, or Ray tasks (local instance by default);
- ``driver``: ties them together.
"""

from .driver import EXECUTORS, BatchSummary, run_batch
from .studies import Study, find_studies

__all__ = ["EXECUTORS", "BatchSummary", "Study", "find_studies", "run_batch"]
