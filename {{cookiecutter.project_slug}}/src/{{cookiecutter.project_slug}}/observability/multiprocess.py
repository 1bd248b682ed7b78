"""Prepare prometheus_client's multiprocess mode before any worker imports it.

With several worker processes each one keeps its own counters; prometheus_client sums them
from files in ``PROMETHEUS_MULTIPROC_DIR``. The variable must be set before the library is
imported, and stale files from an earlier run must go, or their counts would be added in.
This module therefore does not import prometheus_client.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(workers: int) -> Path | None:
    """Point workers at a clean directory when there is more than one of them.

    A directory the operator chose (the variable already set) is emptied and kept; one made
    here is removed again when the serving process exits.
    """
    if workers <= 1 and ENV not in os.environ:
        return None
    chosen = os.environ.get(ENV)
    if chosen:
        directory = Path(chosen)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix="prometheus-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ[ENV] = str(directory)
    return directory
