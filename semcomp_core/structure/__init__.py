"""The structure layer's encoder side: which thin lines of a frame are sent (lane markings, kerbs,
outlines) and how the receiver turns the decoded edge map into generator input."""
from .extract import (STRUCTURE_LEVELS, StructureLevel, extract_structure, resolve_structure_level,
                      structure_factor, structure_input)

__all__ = ["STRUCTURE_LEVELS", "StructureLevel", "extract_structure", "resolve_structure_level",
           "structure_factor", "structure_input"]
