"""Shared database layer for api/ and worker/: models, sessions, migrations, use-case functions.

Imports nothing from api/, worker/ or ml/.
"""
