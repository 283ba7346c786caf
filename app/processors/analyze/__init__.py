"""The ``analyze`` processor (the service's default): a manuscript in, a report out.

Stages, each reported through ``progress``: ``decoding`` (:mod:`.decoding`),
``structuring`` (:mod:`.structure`, :mod:`.language`), ``analysing``
(:mod:`.analysis`, :mod:`.sentences`), ``summarising`` (:mod:`.names`,
:mod:`.analysis`, :mod:`.quality`) and ``writing`` (:mod:`.report`). The
files it writes are described in docs/report-schema.md.
"""

from app.processors.analyze.processor import AnalyzeProcessor, processor

__all__ = ["AnalyzeProcessor", "processor"]
