"""Entry point of ``robot-wm``. Subcommands live in ``robot_wm/cli/cmd_*.py``, each exposing
``register(app: typer.Typer) -> None``; they are discovered here so areas never edit a shared file.

Exit status (design.md's contract):

* 0 success;
* 1 task failure (a command raises ``typer.Exit(1)``, e.g. a demo that did not place every object);
* 2 bad input: one line on stderr, ``error: <file>: <field>: <what>`` (a :class:`ConfigError`) or
  ``error: <command>: <option>: <what>`` (a :class:`BadInput` or a usage error), never a traceback;
* 130 interrupted (Ctrl-C / SIGINT): one line ``interrupted`` on stderr, the process gone within ~1 s.
  Worker processes of the commands' pools exit with their parent (``robot_wm.config.processes``).
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import signal
import sys
import threading

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

INTERRUPTED = 130
EXIT_GRACE_S = 1.0  # after an interrupt, the process is ended this long after main() returns at the latest


class BadInput(Exception):
    """Raised by commands for bad arguments; the message is one line naming the argument."""


@app.callback()
def _root() -> None:
    """robot_wm: perceive, predict, verify in a shadow world, then act."""


_registered = False


def _register_commands() -> None:
    """Import every ``cmd_*`` module and register its commands (once). Done inside :func:`main`, so an
    interrupt during the (slow) imports is an ordinary Ctrl-C, not a traceback."""
    global _registered
    if _registered:
        return
    for mod in sorted(m.name for m in pkgutil.iter_modules(cli_pkg.__path__) if m.name.startswith("cmd_")):
        importlib.import_module(f"robot_wm.cli.{mod}").register(app)
    _registered = True


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _usage_error(exc: typer.TyperException) -> str:
    """``<command path>: <what>`` of a usage error (unknown option, bad value, missing argument)."""
    ctx = getattr(exc, "ctx", None)
    words = ctx.command_path.split()[1:] if ctx is not None else []
    where = " ".join(words) or "robot-wm"
    fmt = getattr(exc, "format_message", None)
    return f"{where}: {_one_line(fmt() if fmt is not None else exc)}"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and, as a console script, exits with) the status code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        _register_commands()
        rc = app(args=argv, standalone_mode=False)  # click returns a command's typer.Exit code here
    except (ConfigError, BadInput) as exc:  # ConfigError includes the model and data files' errors
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (KeyboardInterrupt, typer.Abort):  # typer turns Ctrl-C into Exit(130) or Abort
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except typer.TyperException as exc:  # typer's (vendored click's) usage errors
        if type(exc).__name__ == "NoArgsIsHelpError":  # `robot-wm scene`: its help, as typer shows it
            exc.show()
            return 2
        print(f"error: {_usage_error(exc)}", file=sys.stderr)  # one line, not typer's usage box
        return int(getattr(exc, "exit_code", 2) or 2)
    if rc == INTERRUPTED:  # typer turns Ctrl-C inside a command into this status, silently
        print("interrupted", file=sys.stderr)
    return rc if isinstance(rc, int) else 0


def _force_exit_later(code: int, delay_s: float) -> None:
    """End the process with `code` after `delay_s` s even if non-daemon threads or pool shutdowns would hold
    it (a daemon timer: it never delays an exit that happens sooner)."""
    timer = threading.Timer(delay_s, lambda: os._exit(code))
    timer.daemon = True
    timer.start()


def console_main() -> None:
    """Console-script entry: exit the process with main()'s status (130 within EXIT_GRACE_S of the interrupt
    being handled, whatever is still shutting down)."""
    rc = main()
    if rc == INTERRUPTED:
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, lambda *_: os._exit(INTERRUPTED))  # a second Ctrl-C: out at once
        sys.stderr.flush()
        _force_exit_later(INTERRUPTED, EXIT_GRACE_S)
    sys.exit(rc)


if __name__ == "__main__":
    console_main()
