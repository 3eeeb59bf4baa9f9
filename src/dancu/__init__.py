"""dancu: the national population register, electronic identification and the applications on top."""

__version__ = "0.1.0"
