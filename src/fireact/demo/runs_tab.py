"""The Runs tab: pick a run folder under the demo's runs root, see its summary, browse it.

Owns `list_runs` (the run folders under the root: the root itself and folders up to two levels
below it that hold an ``episodes.jsonl``) and `run_html` (one run). The page of a run is the
viewer's own page (`fireact.report.view.render_html`: its summary, filters and episodes, every
piece of run text escaped, its Content-Security-Policy allowing its one script and no network),
shown in a sandboxed ``<iframe srcdoc>`` (scripts, but no same-origin access to the demo), under
a one-line summary by `fireact.report.view.run_summary` (the numbers ``fireact score`` gives).

Only folders `list_runs` found can be opened: a name from the page that is not among them is an
error, so the page cannot read anything else on disk.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fireact.errors import FireactError
from fireact.report.view import read_run, render_html, run_summary
from fireact.runs import EPISODES

DEPTH = 2  # how deep below the root run folders are looked for


def list_runs(root: Path) -> list[str]:
    """The run folders under `root` (relative names, ``.`` for the root itself), sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [root] if (root / EPISODES).is_file() else []
    level = [root]
    for _ in range(DEPTH):
        level = [d for parent in level for d in sorted(parent.iterdir()) if _is_dir(d)]
        found += [d for d in level if (d / EPISODES).is_file()]
    return sorted(str(d.relative_to(root)) for d in found)


def _is_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not path.name.startswith(".")


def summary_line(stats: dict) -> str:
    """A run's headline numbers in one line."""
    what = " · ".join(str(stats[k]) for k in ("task", "method", "model") if stats.get(k))
    return (
        f"{what} — {stats['done']} of {stats['n']} episodes · EM {stats['em']:.3f} "
        f"({stats['correct']} correct) · F1 {stats['f1']:.3f} · mean steps "
        f"{stats['mean_steps']:.2f} · ${stats['cost_usd']:.4f}"
    )


def run_html(root: Path, name: str) -> str:
    """The Runs tab's view of run `name` (one of `list_runs(root)`)."""
    if not name:
        raise FireactError("runs: pick a run folder")
    if name not in list_runs(root):
        raise FireactError(f"runs: {name} is not a run folder under {root}")
    run = read_run(Path(root) / name)
    page = render_html(run)
    return (
        f'<p class="status ok" id="fireact-run-summary">{escape(summary_line(run_summary(run)))}'
        f'</p><iframe id="fireact-run-view" title="{escape(name)}" sandbox="allow-scripts" '
        f'referrerpolicy="no-referrer" style="width:100%;height:640px;border:1px solid #d0d7de;'
        f'border-radius:6px" srcdoc="{escape(page, quote=True)}"></iframe>'
    )
