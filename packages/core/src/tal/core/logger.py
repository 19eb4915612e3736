"""The ``tal`` logger.

Library code logs to ``logging.getLogger(__name__)`` (every module is below ``tal``) and never
prints. The ``tal`` command calls :func:`setup_logging` once, which shows INFO and above on stderr
through rich's handler; a program that imports tal configures ``logging`` as it likes (without a
handler, Python prints WARNING and above to stderr).
"""

from __future__ import annotations

import logging
import os

ROOT = "tal"
LEVEL_ENV = "TAL_LOG_LEVEL"


def setup_logging(level: int | str | None = None) -> logging.Logger:
    """Give the ``tal`` logger a rich handler on stderr (once) at ``level``.

    ``level`` defaults to ``$TAL_LOG_LEVEL``, else INFO. Records still propagate, so a program that
    configured the root logger gets them there too.
    """
    from rich.console import Console
    from rich.logging import RichHandler

    logger = logging.getLogger(ROOT)
    chosen = level if level is not None else os.environ.get(LEVEL_ENV, "INFO")
    logger.setLevel(chosen.upper() if isinstance(chosen, str) else chosen)
    if not any(getattr(h, "_tal_handler", False) for h in logger.handlers):
        handler = RichHandler(
            console=Console(stderr=True),
            show_time=False,
            show_path=False,
            markup=False,
            rich_tracebacks=False,
        )
        handler._tal_handler = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger
