"""Lets `generate.python.setup_py: true` install the sample with `pip install .`."""

from setuptools import setup

setup(
    name="gantry-generated-sample",
    version="0.1.0",
    packages=["genapp"],
    install_requires=["greeting-lib==0.1.0"],
)
