"""Settings every test shares.

The tests quote the package's messages in English, so they run with the messages in English whatever
the locale of the machine (``VERZUIM_LANG=en``, also for the commands they start). Tests of the Dutch
messages and of the choice of language set or remove it themselves (``tests/test_messages.py``).
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def english_messages(monkeypatch):
    monkeypatch.setenv("VERZUIM_LANG", "en")
