"""Method packages: one home per paper.

Each subpackage holds everything one paper adds — its model and presets, its saved-model
artefacts, its training extras, its test-time adaptation and its commands — and plugs into the
shared layers through the registries those layers own (see :mod:`aioir.plugins` and
``docs/adding-a-method.md``). Importing this package imports no method.
"""
