"""MASH Exchange: a privacy-preserving information-sharing broker for MASHs."""

__version__ = "0.1.0"
