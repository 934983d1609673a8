"""Stream coding: sessions that code a camera's frames in order (see :mod:`.session`)."""
from .session import (DecoderSession, EncoderSession, FrameInfo, IntraDecoderSession, IntraEncoderSession,
                      ReferenceMissingError)

__all__ = ["DecoderSession", "EncoderSession", "FrameInfo", "IntraDecoderSession", "IntraEncoderSession",
           "ReferenceMissingError"]
