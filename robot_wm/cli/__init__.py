"""Layer 6: the ``robot-wm`` command. Each ``cmd_*.py`` module here registers its subcommands."""
