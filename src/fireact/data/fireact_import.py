"""FireAct's trajectory JSON (``trajs/*.json``, as its ``generation.py`` writes) → our episodes.

Owns `import_fireact_trajectories`: each entry ``{index: {reward, em, f1, gt, pred, prompt, traj,
traj_by_line}}`` becomes an episode record of our run files (question, trajectory text, chat
messages, reward), so that convert, score and view read FireAct's runs like ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fireact import trajectory
from fireact.data.records import json_kind
from fireact.data.shapes import KNOWN_TASKS, chat_turns, parse_blocks
from fireact.errors import FireactError
from fireact.files import read_json
from fireact.trajectory import ACTION, FINISHED, OBSERVATION, THOUGHT


def import_fireact_trajectories(
    path: Path, *, method: str = "react", task: str | None = None
) -> list[dict[str, Any]]:
    """Read FireAct's trajectory JSON (``{index: {reward, em, f1, gt, pred, prompt, traj,
    traj_by_line}}``, as its ``generation.py`` writes) into our episode records.

    ``traj`` is the question followed by the Thought/Action/Observation lines (few-shot runs),
    the same behind the alpaca prompt (``--alpaca_format`` runs), or a chat message list
    (``--chatgpt_format`` runs); all three are read. The task defaults to the file name's first
    word when it names a task (``hotpotqa_dev_0_500_...json``).
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise FireactError(
            f"{path}: expected a JSON object mapping ids to FireAct trajectories, "
            f"got {json_kind(data)}"
        )
    if not data:
        raise FireactError(f"{path}: no episodes in this file")
    task = task or _task_from_name(path)
    return [_fireact_record(path, str(key), entry, method, task) for key, entry in data.items()]


def _task_from_name(path: Path) -> str | None:
    first = path.stem.split("_")[0].lower()
    return first if first in KNOWN_TASKS else None


def _fireact_record(
    path: Path, key: str, entry: Any, method: str, task: str | None
) -> dict[str, Any]:
    where = f"{path} (entry {key})"
    if not isinstance(entry, dict):
        raise FireactError(f"{where}: expected an object with 'traj', got {json_kind(entry)}")
    if "traj" not in entry:
        raise FireactError(f"{where}: no 'traj' field")
    question, text = split_fireact_traj(where, entry["traj"])
    em = entry.get("em", entry.get("reward", False))
    blocks = parse_blocks(text)
    finished = any(b.text.startswith(FINISHED) for b in blocks if b.kind == OBSERVATION)
    return {
        "id": key,
        "task": task,
        "method": method,
        "format": "chat" if isinstance(entry["traj"], list) else "text",
        "question": question,
        "gold": entry.get("gt"),
        "prediction": entry.get("pred"),
        "finished": finished,
        "reward": em,
        "em": em,
        "f1": entry.get("f1", 0.0),
        "steps": sum(1 for b in blocks if b.kind == ACTION),
        "trajectory": text,
        "messages": chat_turns(question, blocks),
    }


def split_fireact_traj(where: str, traj: Any) -> tuple[str, str]:
    """(question, trajectory text) of one FireAct ``traj`` value (text or chat list): the text
    behind an alpaca prompt, else the lines from the first ``Thought:`` / ``Action:`` line on."""
    if isinstance(traj, list):
        return _split_chat_traj(where, traj)
    if not isinstance(traj, str):
        raise FireactError(f"{where}: 'traj' must be text or a message list, got {json_kind(traj)}")
    alpaca = trajectory.split_alpaca_prompt(traj)
    if alpaca is not None:
        return alpaca
    first = next((b for b in trajectory.blocks(traj) if b.kind in (THOUGHT, ACTION)), None)
    if first is None:
        question, _, rest = traj.partition("\n")
        return question, rest
    return traj[: first.start].rstrip("\n"), traj[first.start :]


def _split_chat_traj(where: str, traj: list[Any]) -> tuple[str, str]:
    contents: list[str] = []
    for i, message in enumerate(traj):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise FireactError(f"{where}: traj message {i} must be an object with string content")
        contents.append(message["content"])
    if not contents or traj[0].get("role") != "user":
        raise FireactError(f"{where}: traj must start with the user question")
    return contents[0], "".join(content + "\n" for content in contents[1:])
