"""Trained policies for deployment: one self-contained artefact per home (ONNX, with
the `export` extra, and NumPy), with a manifest of homes, devices and inputs."""

from ._export import (
    deterministic_actions as deterministic_actions,
    export_policies as export_policies,
    MANIFEST as MANIFEST,
    numpy_act as numpy_act,
)


__all__ = ["MANIFEST", "deterministic_actions", "export_policies", "numpy_act"]
