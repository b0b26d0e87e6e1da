"""An LRU cache of loaded ml.inference Predictors (the API's only door into ml/ beyond config)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any


class PredictorCache:
    def __init__(self, *, size: int, device: str = "cpu") -> None:
        self.size = size
        self.device = device
        self._items: OrderedDict[tuple[str, float], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, float], threading.Lock] = {}

    def get(self, checkpoint: Path) -> Any:
        """The Predictor for ``checkpoint`` (reloaded if the file changed); loads outside the cache lock."""
        key = (str(checkpoint), checkpoint.stat().st_mtime)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            from ml.inference import Predictor

            predictor = Predictor.load(checkpoint, device=self.device)
            with self._lock:
                self._items[key] = predictor
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._loading.pop(key, None)
            return predictor

    def __len__(self) -> int:
        return len(self._items)
