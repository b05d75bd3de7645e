"""crossdistill: cross-modal knowledge distillation, from data to an exported student."""

__version__ = "0.1.0"
