"""The version, written once: pyproject.toml reads it (hatch), ``bridgeway.__version__``
and ``bridgeway --version`` show it. CHANGELOG.md has a section per version."""

__version__ = "0.1.0"
