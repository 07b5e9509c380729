"""instructor_core: instruction-conditioned text embeddings (INSTRUCTOR, Su et al., 2023).

The minimal core: load a model, embed queries and documents with their instructions, save.
No LangChain, LlamaIndex, Chroma or Qdrant import happens here.
"""

from __future__ import annotations

from instructor_core.errors import InstructorError
from instructor_core.instructions import INSTRUCTOR_RETRIEVAL, NO_INSTRUCTIONS, Instructions, template
from instructor_core.model.detect import AmbiguousInstructorWarning
from instructor_core.model.encoder import InstructorEncoder, TokenBatch
from instructor_core.model.load_options import LoadOptions, LoadOptionsError
from instructor_core.model.loading import ModelFolderError
from instructor_core.model.remote import RemoteEncoder, RemoteEncoderError
from instructor_core.version import __version__

__all__ = [
    "INSTRUCTOR_RETRIEVAL",
    "AmbiguousInstructorWarning",
    "NO_INSTRUCTIONS",
    "InstructorEncoder",
    "InstructorError",
    "Instructions",
    "LoadOptions",
    "LoadOptionsError",
    "ModelFolderError",
    "RemoteEncoder",
    "RemoteEncoderError",
    "TokenBatch",
    "__version__",
    "template",
]
