"""instructor_core: instruction-conditioned text embeddings (INSTRUCTOR, Su et al., 2023).

The minimal core: load a model, embed queries and documents with their instructions, save.
No LangChain, LlamaIndex, Chroma or Qdrant import happens here.
"""

from __future__ import annotations

from .detect import AmbiguousInstructorWarning
from .encoder import InstructorEncoder, TokenBatch
from .instructions import INSTRUCTOR_RETRIEVAL, NO_INSTRUCTIONS, Instructions, template
from .load_options import LoadOptions, LoadOptionsError
from .loading import ModelFolderError
from .version import __version__

__all__ = [
    "INSTRUCTOR_RETRIEVAL",
    "AmbiguousInstructorWarning",
    "NO_INSTRUCTIONS",
    "InstructorEncoder",
    "Instructions",
    "LoadOptions",
    "LoadOptionsError",
    "ModelFolderError",
    "TokenBatch",
    "__version__",
    "template",
]
