"""Training and evaluation engine: one loop, two tasks (PCL with optional KD, classification)."""

from ml.engine.callbacks import Callback, CallbackList, HistoryCallback
from ml.engine.runner import RunResult, run

__all__ = ["Callback", "CallbackList", "HistoryCallback", "RunResult", "run"]
