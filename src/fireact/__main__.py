"""``python -m fireact`` runs the CLI."""

from fireact.cli import main

main()
