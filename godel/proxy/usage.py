"""Reading usage off an answer as it streams past: SSE events or a JSON body, never a whole stream in memory."""

from __future__ import annotations

import json
import logging

from godel.proxy.dialects import Dialect, Used

log = logging.getLogger(__name__)

MAX_METERED_BODY = 64 * 1024 * 1024
"""Bytes of a non-streaming answer kept to read its usage; a larger one is passed on unmetered."""
MAX_SSE_LINE = 8 * 1024 * 1024
"""Bytes of one SSE line kept; a longer line (no usage is that long) is skipped."""


class Meter:
    """Reads usage from an answer as it streams past, without holding a stream in memory."""

    def __init__(self, dialect: Dialect, *, streaming: bool, model: str | None = None) -> None:
        self.dialect = dialect
        self.streaming = streaming
        self.used = Used(model=model)
        self._buffer = bytearray()
        self._overflow = False
        """A body too large to keep: it is passed on unmetered."""
        self._skipping = False
        """Inside an oversized SSE line, dropped until its newline."""

    def feed(self, chunk: bytes) -> None:
        if not self.streaming:
            if not self._overflow:
                self._buffer += chunk
                self._overflow = len(self._buffer) > MAX_METERED_BODY
                if self._overflow:
                    self._buffer.clear()
            return
        self._buffer += chunk
        while (end := self._buffer.find(b"\n")) >= 0:
            if not self._skipping:
                self._line(bytes(self._buffer[:end]))
            self._skipping = False
            del self._buffer[: end + 1]
        if len(self._buffer) > MAX_SSE_LINE:
            # an event this large is content, never the small usage event: drop it and read on
            self._buffer.clear()
            self._skipping = True

    def finish(self) -> Used:
        """The usage seen; call once the answer has ended."""
        if self._overflow:
            log.warning("%s answer larger than %d bytes; not metered", self.dialect.name, MAX_METERED_BODY)
            return Used(model=self.used.model)
        if self.streaming and not self._skipping:
            self._line(bytes(self._buffer))
        elif not self.streaming:
            self._document(bytes(self._buffer))
        self._buffer.clear()
        return self.used

    def _line(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        if line.startswith(b"data:"):
            self._document(line[5:].strip())

    def _document(self, data: bytes) -> None:
        if not data or data == b"[DONE]":
            return
        try:
            doc = json.loads(data)
        except ValueError:
            return  # keep-alive comments, or a body that is not JSON: nothing to meter
        if isinstance(doc, dict):
            self.dialect.observe(doc, self.used)
