"""Suite-wide test set-up: offscreen Qt, isolated settings, shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# pytest-qt aborts without a summary when no platform plugin can start: force offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MNE_DONTWRITE_HOME", "true")

SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture
def real_data_dir() -> Path:
    """The real recordings beside the checkout; tests that need them skip without them."""
    if not SHARED_REAL.is_dir():
        pytest.skip("../shared/data/real is not present")
    return SHARED_REAL


@pytest.fixture(scope="module")
def torch_one_thread() -> Iterator[None]:
    """Run a module's torch work on one intra-op thread, then restore the count.

    On a shared 2-core machine OpenMP spinning makes tiny ops 10x slower.

    Module-scoped, so the module's own module-scoped models are built under it too; use it with
    ``pytestmark = pytest.mark.usefixtures("torch_one_thread")`` or by name.
    """
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
