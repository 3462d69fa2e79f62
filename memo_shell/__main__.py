"""``python -m memo_shell`` behaves exactly like the ``memo-shell`` command."""

from memo_shell.cli import main

main()
