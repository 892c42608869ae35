"""Expert iteration in one command (`fireact iterate RECIPE.yaml`).

Rounds of: the current model answers a question range ``k`` times with sampling → the successful
trajectories are kept (one per question, optionally mixed with the teacher's data) → a data report
→ training (from the base model or the previous round's) → evaluation on held-out questions.
Every stage writes into ``OUT/ROUND_k/`` and the loop resumes at the stage it stopped in.

Modules: `recipe` (the YAML recipe, its checks, the resume rule), `state` (round folders,
done-markers, paths stored relative to the loop folder), `model` (the model a round hands on),
`stages` (each stage: an existing fireact function), `summary` (``summary.json``, the table,
``em_per_round.png``), `loop` (`iterate`).
"""

from __future__ import annotations

from fireact.iterate.loop import iterate
from fireact.iterate.recipe import IterateRecipe, load_recipe
from fireact.iterate.summary import table

__all__ = ["IterateRecipe", "iterate", "load_recipe", "table"]
