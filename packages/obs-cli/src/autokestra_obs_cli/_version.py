"""The version ``workflow --version`` prints, known without reading package metadata.

``importlib.metadata`` costs more to import than the rest of ``--version`` (zipfile, email,
csv); a test pins this constant to the installed distribution's version.

    from ._version import VERSION
"""

VERSION = "0.1.0"
