"""fireact's benchmarks, one module per benchmark (``*_bench.py``) plus what they share:
`benchmarks.common` (machine facts, the command, statistics, tables, the results file) and
`benchmarks.models` (the random Llamas and the device clock of the model benchmarks).

Each benchmark runs from the repository root either way:

    python benchmarks/search_bench.py ...        # as a script
    python -m benchmarks.search_bench ...        # as a module of this package

and the tests import them as ``from benchmarks import search_bench``. Each calls the product
path it measures (`fireact.train.train`, `fireact.llm.hf.HFLLM`, `fireact.tools.local`,
`fireact.agent.arun`); only the baselines are this folder's own code.

Importing this package makes ``fireact`` importable from a checkout without ``pip install -e .``
(the GPU machine runs the benchmarks with nothing installed): the repository's ``src/`` is
appended to ``sys.path`` when it is not there.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
if str(SRC) not in sys.path:  # a checkout without `pip install -e .`
    sys.path.append(str(SRC))
