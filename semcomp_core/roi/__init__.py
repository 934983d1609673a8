"""Selective coding (issue 9, after SSGC): a region of interest sent as classically coded pixels.

``masks`` -- which map cells are in the ROI (class rule, low confidence, user mask/boxes) and their
pixel footprint; ``picture`` -- the ROI's pixels as one HEVC intra picture at a byte budget;
``selective`` -- the per-frame decision (budget split, classic fallback) and the receiver's blend.
The layer's bytes are :mod:`semcomp_core.layers.roi`.
"""
