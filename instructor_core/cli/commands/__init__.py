"""Subcommands of the ``instructor`` CLI, one module each (see ``instructor_core.cli``)."""
