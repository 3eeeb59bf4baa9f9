"""``python -m dancu.reconcile FILE --out DIR``: the reconcile command on its own."""

from dancu.reconcile.cli import main

main()
