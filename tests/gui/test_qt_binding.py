"""The Qt binding must not leak references to True/None (PySide6 6.12.0 on Python < 3.12 does:
every ``Signal.emit()`` drops one reference to True, every ``processEvents()`` one to None,
so a long training run — thousands of progress signals — crashed the app)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QCoreApplication, QObject, Signal


class _Emitter(QObject):
    ping = Signal(object)


def test_signals_and_event_processing_keep_refcounts(qapp) -> None:
    emitter = _Emitter()
    received: list[object] = []
    emitter.ping.connect(received.append)
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(200):
        emitter.ping.emit(None)
        QCoreApplication.processEvents()
    received.clear()
    assert sys.getrefcount(True) >= true_before - 5
    assert sys.getrefcount(None) >= none_before - 5
