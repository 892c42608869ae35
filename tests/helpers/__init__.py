"""Helpers shared by the tests: local fake servers, tiny models, CLI runners and the scripted
tools, models and runs several test files build. Tests import them as ``tests.helpers.NAME``."""
