"""Click options shared by several ``sep`` commands."""

from __future__ import annotations

import math
from typing import Any

import click

from sepframework import hub


def _go_offline(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        hub.go_offline()


#: ``--offline`` for any command that loads models (``sep models pull``, ``sep run``...).
offline_option = click.option(
    "--offline", is_flag=True, expose_value=False, callback=_go_offline, is_eager=True,
    help="Use only bundled and cached model files, never the network (same as HF_HUB_OFFLINE=1).",
)


class FiniteFloatRange(click.FloatRange):
    """A :class:`click.FloatRange` that also refuses ``nan`` and infinities."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number
