"""Fine-tuning data: converting runs to alpaca / chat files and checking those files (SPEC §4).

`convert` and `import_fireact_trajectories` live in `fireact.data.convert`; `check_chat_file`
and `check_alpaca_file` (OpenAI's format rules as errors, our agent conventions as warnings)
in `fireact.data.check`.
"""

from fireact.data.check import Issue, Report, check_alpaca_file, check_chat_file
from fireact.data.convert import convert, import_fireact_trajectories

__all__ = [
    "Issue",
    "Report",
    "check_alpaca_file",
    "check_chat_file",
    "convert",
    "import_fireact_trajectories",
]
