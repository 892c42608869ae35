"""Fine-tuning data: converting runs to alpaca / chat files and checking those files (SPEC §4).

`convert` lives in `fireact.data.convert` (filters, files, counts), FireAct's shapes per method
in `fireact.data.shapes`, the episode record's fields in `fireact.data.records`, and
`import_fireact_trajectories` (FireAct's ``trajs/*.json``) in `fireact.data.fireact_import`;
`check_chat_file` and `check_alpaca_file` (OpenAI's format rules as errors, our agent conventions
as warnings) in `fireact.data.check`, with the token counts of `fireact.data.openai_tokens`.
"""

from fireact.data.check import Issue, Report, check_alpaca_file, check_chat_file
from fireact.data.convert import convert
from fireact.data.fireact_import import import_fireact_trajectories

__all__ = [
    "Issue",
    "Report",
    "check_alpaca_file",
    "check_chat_file",
    "convert",
    "import_fireact_trajectories",
]
