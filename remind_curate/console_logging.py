"""The terminal side of Prefect's logging for the command line: its messages, without Python tracebacks.

A failed flow is reported three times on stderr otherwise: Prefect's task-run and flow-run loggers each print the
traceback, then the command prints its one-line error. The console keeps Prefect's one-line messages (which run
failed, in which state) and drops only the tracebacks; Prefect's API log, which the UI shows, keeps them whole,
and ``REMIND_DEBUG=1`` leaves the console as Prefect sets it. Only the command line does this: a library caller
of the flows gets Prefect's logging unchanged.
"""
from __future__ import annotations

import logging


class WithoutTraceback(logging.Formatter):
    """Formats a record as ``inner`` does, as though it carried no exception or stack."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:  # the same record goes on to other handlers (the API log keeps the traceback)
            record.exc_info, record.exc_text, record.stack_info = saved


def console_without_tracebacks() -> None:
    import prefect.main  # noqa: F401 - Prefect configures its logging on import: its console handler is then there
    from prefect.logging.handlers import PrefectConsoleHandler

    for logger in (logging.getLogger(), logging.getLogger("prefect")):
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not isinstance(handler.formatter, WithoutTraceback):
                handler.setFormatter(WithoutTraceback(handler.formatter))
