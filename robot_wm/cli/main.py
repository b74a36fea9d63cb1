"""Entry point of ``robot-wm``. Subcommands live in ``robot_wm/cli/cmd_*.py``, each exposing
``register(app: typer.Typer) -> None``; they are discovered here so areas never edit a shared file.

Exit status: 0 success, 1 task failure, 2 bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import typer

import robot_wm.cli as cli_pkg
from robot_wm.config import ConfigError

app = typer.Typer(
    name="robot-wm",
    help="robot_wm: perceive, predict, verify in a shadow world, then act.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class BadInput(Exception):
    """Raised by commands for bad arguments; the message is one line naming the argument."""


@app.callback()
def _root() -> None:
    """robot_wm: perceive, predict, verify in a shadow world, then act."""


def _register_commands() -> None:
    for mod in sorted(m.name for m in pkgutil.iter_modules(cli_pkg.__path__) if m.name.startswith("cmd_")):
        importlib.import_module(f"robot_wm.cli.{mod}").register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and, as a console script, exits with) the status code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        rc = app(args=argv, standalone_mode=False)  # click returns a command's typer.Exit code here
    except (ConfigError, BadInput) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0)
    except (KeyboardInterrupt, typer.Abort):  # click turns Ctrl-C into Abort when it is not standalone
        print("interrupted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # usage errors: typer prints them and names exit status 2
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    if rc == 130:  # typer turns Ctrl-C inside a command into this status, silently
        print("interrupted", file=sys.stderr)
    return rc if isinstance(rc, int) else 0


def console_main() -> None:
    """Console-script entry: exit the process with main()'s status."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
