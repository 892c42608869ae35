"""Fitting examples to the cutoff, packing them into rows, and the collator that batches rows.

Owns how examples become tensors. A *row* is a list of examples that together fit in
``cutoff_len`` tokens (packing: first-fit decreasing; no packing: one example per row).

Packed examples never see each other: every example restarts its ``position_ids`` at 0, the
first label of every example is -100 (nothing before it in its own example predicts it), and
attention is confined to each example by one of three means:

* ``positions`` (sdpa / eager, the default where transformers supports it): no attention mask
  at all; transformers' ``masking_utils.find_packed_sequence_indices`` (4.54+, so 5.17 and
  5.24) finds the examples where ``position_ids`` restart and builds the block-diagonal causal
  mask itself, on the device. Detection needs ``attention_mask=None`` and no KV cache
  (``use_cache`` off, as the trainer sets it); nothing of size rows × width² is built on the host
  or copied to the device.
* ``mask4d`` (the fallback where detection is not available, e.g. a remote-code model or an
  older transformers): an explicit 4D block-diagonal causal mask (bool for sdpa; additive
  0 / -inf, ``mask4d_additive``, for eager, which misreads a bool mask in transformers 5.24).
* ``varlen`` (``flash_attention_2``): the micro-batch's rows are flattened into ONE row (batch
  size 1, no padding) with no attention mask; flash-attn's variable-length kernel reads the
  example boundaries from the restarting ``position_ids`` (transformers only does this for a
  batch of one row).

Padding (to the longest row of a micro-batch, or to a fixed ``pad_to`` width for
``torch.compile``'s static shapes) gets its own block (its positions restart at 0 too) and label
-100, so the loss is exactly the token-weighted loss of the examples as if each were run alone
(``tests/test_packing_paths.py`` checks each path against the unpacked loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fireact.train.dataset import IGNORE, Example

Row = list[Example]


@dataclass
class FitReport:
    """What `fit_to_cutoff` did."""

    truncated: int = 0
    dropped: int = 0


def fit_to_cutoff(
    examples: list[Example], cutoff: int, overlong: str
) -> tuple[list[Example], FitReport]:
    """Truncate (keep the first `cutoff` tokens) or drop examples longer than `cutoff`."""
    report = FitReport()
    kept = []
    for example in examples:
        if len(example.input_ids) <= cutoff:
            kept.append(example)
        elif overlong == "drop":
            report.dropped += 1
        else:
            report.truncated += 1
            cut = Example(example.input_ids[:cutoff], example.labels[:cutoff])
            if cut.supervised:
                kept.append(cut)
            else:
                report.dropped += 1
    return kept, report


def pack(examples: list[Example], cutoff: int) -> list[Row]:
    """First-fit decreasing: the longest example first, each into the first row it fits."""
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].input_ids))
    rows: list[Row] = []
    room: list[int] = []
    for i in order:
        size = len(examples[i].input_ids)
        slot = next((r for r, free in enumerate(room) if free >= size), None)
        if slot is None:
            rows.append([])
            room.append(cutoff)
            slot = len(rows) - 1
        rows[slot].append(examples[i])
        room[slot] -= size
    return rows


def make_rows(examples: list[Example], cutoff: int, packing: bool) -> list[Row]:
    """Rows for training: packed, or one example each."""
    return pack(examples, cutoff) if packing else [[e] for e in examples]


class RowDataset:
    """A list of rows as a map-style dataset (what `Trainer` needs: `len` and `[i]`)."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Row]:
        return {"row": self.rows[i]}


@dataclass
class PackedCollator:
    """Rows → ``input_ids``, ``labels``, ``position_ids`` and the attention mask of `attention`.

    `attention`: ``"positions"`` (no mask; transformers finds the examples from the restarting
    ``position_ids``), ``"mask4d"`` (bool mask, for sdpa), ``"mask4d_additive"`` (float mask,
    for eager attention), ``"varlen"`` (one flattened row, no mask; flash-attn reads
    ``position_ids``) or ``"padded"`` (a 2D padding mask; for rows of one example each).
    `pad_to`: pad every batch to at least this width (static shapes for ``torch.compile``).
    """

    pad_id: int
    attention: str = "mask4d"
    pad_to: int | None = None

    def __call__(self, items: list[dict[str, Row]]) -> dict[str, Any]:
        import torch

        rows = [item["row"] for item in items]
        if self.attention == "varlen":
            rows = [[example for row in rows for example in row]]
        width = max(sum(len(e.input_ids) for e in row) for row in rows)
        width = max(width, self.pad_to or 0)
        ids, labels, positions, blocks = [], [], [], []
        for row in rows:
            r_ids, r_labels, r_pos, r_block = _flatten(row, width, self.pad_id)
            ids.append(r_ids)
            labels.append(r_labels)
            positions.append(r_pos)
            blocks.append(r_block)
        batch = {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "position_ids": torch.tensor(positions),
        }
        block = torch.tensor(blocks)
        if self.attention == "padded":
            batch["attention_mask"] = (block >= 0).long()
        elif self.attention.startswith("mask4d"):
            batch["attention_mask"] = self._mask4d(block)
        return batch

    def _mask4d(self, block: Any) -> Any:
        import torch

        width = block.shape[1]
        causal = torch.ones(width, width, dtype=torch.bool).tril()
        same = block[:, :, None] == block[:, None, :]
        mask = (same & causal)[:, None, :, :]
        if self.attention == "mask4d_additive":  # float32: promotes bf16/fp16 scores, no overflow
            zeros = torch.zeros(mask.shape, dtype=torch.float32)
            return zeros.masked_fill(~mask, torch.finfo(torch.float32).min)
        return mask


def _flatten(
    row: Row, width: int, pad_id: int
) -> tuple[list[int], list[int], list[int], list[int]]:
    """One row as flat lists; padding to `width` forms its own block (id -1)."""
    ids, labels, positions, block = [], [], [], []
    for n, example in enumerate(row):
        size = len(example.input_ids)
        ids += example.input_ids
        labels += [IGNORE, *example.labels[1:]]
        positions += range(size)
        block += [n] * size
    pad = width - len(ids)
    ids += [pad_id] * pad
    labels += [IGNORE] * pad
    positions += range(pad)
    block += [-1] * pad
    return ids, labels, positions, block
