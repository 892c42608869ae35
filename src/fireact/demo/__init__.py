"""`fireact demo`: a Gradio web app to ask a model questions and keep or flag its episodes.

The package (optional extra ``fireact[demo]``): `app` the layout, auth and serving; `session`
running asked questions as episodes and streaming their steps (Stop cancels); `inputs` the
Ask form checked; `shared` the models and tools every session shares; `render` the Ask tab's
HTML; `store` keep / flag into a run folder; `runs_tab` browsing run folders. Docs:
``docs/demo.md``.
"""

from __future__ import annotations
