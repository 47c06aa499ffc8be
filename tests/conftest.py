import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # tests/negatives.py and other helpers

SHARED = TESTS.parent.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "samples").is_dir():
        pytest.skip(f"{SHARED} is absent: the real RAW samples are not available here")
    return SHARED
