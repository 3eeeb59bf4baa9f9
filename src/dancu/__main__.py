"""``python -m dancu`` runs the ``dancu`` command."""

from dancu.cli import main

main()
