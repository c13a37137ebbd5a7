"""The exceptions tinyrnn raises. Every message is one sentence a person can act on."""


class TinyRNNError(Exception):
    """Base class of every error tinyrnn raises on purpose."""


class TextError(TinyRNNError, ValueError):
    """The training text cannot be used (empty, too short, not UTF-8, binary, too large)."""


class UnknownCharacterError(TinyRNNError, ValueError):
    """A character is not in the vocabulary (and the vocabulary has no unknown symbol)."""


class ConfigError(TinyRNNError, ValueError):
    """A hyper-parameter is outside its allowed range."""


class CheckpointError(TinyRNNError, ValueError):
    """A checkpoint file is corrupt, hostile, of another version, or does not fit."""


class TrainingDiverged(TinyRNNError, RuntimeError):
    """The loss or the gradients became NaN or infinite; the last good parameters were kept."""


class SaveError(TinyRNNError, OSError):
    """A file cannot be written (missing or read-only directory, a directory or device as the target, the disk
    full); the previous file at that path is unchanged."""
