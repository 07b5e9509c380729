"""The model side: reading a model folder, the encoder, pooling and the modules after it, prompts,
quantized outputs, the inference backends and the model's fingerprint.

Users import from :mod:`instructor_core` (and these modules); this package re-exports nothing.
"""

__all__: list[str] = []
