"""wizsync: fleet config-as-code for WizChat chatbots.

The pipeline, one package each: manifest → render → plan → apply → journal → report.
"""

from wizchat_management import __version__

__all__ = ["__version__"]
