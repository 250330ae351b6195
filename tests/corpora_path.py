"""Where the shared mail corpora are: `POSTDESK_CORPORA`, else `../shared/corpora` beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# A clone made somewhere else (CI) names the corpora in the environment; the Makefile does it.
CORPORA = Path(os.environ.get("POSTDESK_CORPORA") or REPO_ROOT.parent / "shared" / "corpora")
