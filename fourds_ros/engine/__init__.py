"""Inference engines behind one interface; `create_engine` picks the backend. No rclpy."""

from .base import (
    DEFAULT_NUM_QUERIES,
    EngineError,
    EngineInputError,
    EngineSpec,
    InferenceEngine,
)
from .factory import BACKENDS, create_engine

__all__ = [
    "BACKENDS", "DEFAULT_NUM_QUERIES", "EngineError", "EngineInputError", "EngineSpec",
    "InferenceEngine", "create_engine",
]
