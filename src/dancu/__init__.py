"""dancu: the national population register, e-ID and the applications on top."""

__version__ = "0.1.0"
