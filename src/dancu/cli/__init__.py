"""The ``dancu`` command (CONTRACTS.md section 1).

Exit codes: 0 success, 1 user error (bad input; the message on stderr names the row, column
and problem), 2 usage error. Long commands show a progress bar on a terminal and print one
summary line when stdout is not a terminal.

Each command lives in its own module (``dancu.cli.reconcile``, ``.registry``, ``.serve``,
``.audit``, ``.exchange``, ``.officials``), imported only when that command runs or when
``dancu --help`` lists it: ``dancu reconcile`` does not pay for the web app, Alembic or the
exchange at start-up. :class:`LazyGroup` resolves a command name to its module.
"""

from __future__ import annotations

import importlib
import json
import logging
from typing import TYPE_CHECKING, Annotated

import typer
import typer.core
import typer.main

from dancu import __version__
from dancu.cli import console

if TYPE_CHECKING:  # typer vendors click: TyperGroup's methods take typer._click's types
    from typer._click import Command, Context

__all__ = ["LAZY_COMMANDS", "LazyGroup", "app", "main"]

# name -> (module, Typer attribute, whether it is a command group; if not, the Typer holds the
# command of that name). The order of `dancu --help` is _HELP_ORDER.
LAZY_COMMANDS: dict[str, tuple[str, str, bool]] = {
    "reconcile": ("dancu.cli.reconcile", "reconcile_cli", False),
    "seed": ("dancu.cli.registry", "seed_cli", False),
    "serve": ("dancu.cli.serve", "serve_cli", False),
    "registry": ("dancu.cli.registry", "app", True),
    "audit": ("dancu.cli.audit", "app", True),
    "exchange": ("dancu.cli.exchange", "app", True),
    "officials": ("dancu.cli.officials", "app", True),
}
_HELP_ORDER = (
    "reconcile",
    "seed",
    "serve",
    "version",
    "registry",
    "audit",
    "exchange",
    "officials",
)


class LazyGroup(typer.core.TyperGroup):
    """A Typer group whose commands are imported from their module on first use."""

    def list_commands(self, ctx: Context) -> list[str]:  # noqa: ARG002 (click's signature)
        eager = [name for name in self.commands if name not in _HELP_ORDER]
        return [*_HELP_ORDER, *eager]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:  # noqa: ARG002
        if cmd_name in self.commands or cmd_name not in LAZY_COMMANDS:
            return self.commands.get(cmd_name)
        module_name, attribute, is_group = LAZY_COMMANDS[cmd_name]
        target = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(target, typer.Typer):
            raise TypeError(f"{module_name}.{attribute} is not a Typer app")
        group = typer.main.get_group(target)
        command: Command = group if is_group else group.commands[cmd_name]
        command.name = cmd_name
        self.commands[cmd_name] = command
        return command


app = typer.Typer(
    cls=LazyGroup,
    help="dancu: the national population register, e-ID and the applications on top.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


@app.command("version")
def version() -> None:
    """Print the version as JSON."""

    console.out.print(json.dumps({"dancu": __version__}))


def main() -> None:
    """Console entry point: usage errors exit 2 (click), user errors 1."""
    app()
