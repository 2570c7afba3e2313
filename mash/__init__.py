"""MASH Exchange: a privacy-preserving information-sharing broker for MASHs."""

from mash._native import preload_rego

preload_rego()  # before grpc or protobuf load libstdc++: see mash/_native.py

__version__ = "0.1.0"
