"""tinyrnn's optional native kernels (see kernels.c); tinyrnn.engines.native loads ``LIBRARY`` with ctypes."""

from . import _kernels

__version__ = "0.1.0"

LIBRARY = _kernels.__file__  # the compiled file itself: its C functions are called through ctypes
