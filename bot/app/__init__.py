"""The composition root: the one package that imports every layer.

``web`` builds the aiohttp application, ``runtime`` the services a process needs, ``cli``
is the ``safehaven`` command. Nothing outside this package imports it (import-linter checks
this; see docs/architecture.md).
"""
