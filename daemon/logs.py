"""Structured logs: one JSON object a line on stdout for journald, readable on a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure_logging(level: str = "info", force_json: bool | None = None) -> None:
    """Route structlog to stdout, JSON unless stdout is a terminal."""
    as_json = not sys.stdout.isatty() if force_json is None else force_json
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    route_standard_logging(renderer, level)


def route_standard_logging(renderer: Any, level: str) -> None:
    """Send libraries' standard-library logs (APScheduler, watchdog) through the same renderer.

    Without this their warnings reach stderr as plain text that journald cannot parse as JSON.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(logging.getLevelName(level.upper()), logging.WARNING))


def get_logger(**context: Any) -> structlog.typing.FilteringBoundLogger:
    """A logger carrying ``context`` (for example kind and name) on every line."""
    return structlog.get_logger().bind(**context)  # type: ignore[no-any-return]
