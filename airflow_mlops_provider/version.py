"""The provider's version: a leaf module, so code needing it never imports the package root."""

from __future__ import annotations

__version__ = "0.1.0"
