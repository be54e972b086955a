"""Thin shim: every piece of metadata lives in setup.cfg."""

from setuptools import setup

setup()
