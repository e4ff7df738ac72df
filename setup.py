"""Installs the repository's top-level core/, gui/ and resources/ under the one import name
`gpuops` (gpuops.core, gpuops.gui, gpuops.resources), so nothing generic lands in site-packages.
Everything else about the project is in pyproject.toml."""

from setuptools import find_packages, setup

FOLDERS = {"gpuops": "gpuops", "gpuops.core": "core", "gpuops.gui": "gui", "gpuops.resources": "resources"}

packages: list[str] = []
for package, folder in FOLDERS.items():
    packages.append(package)
    packages += [f"{package}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=FOLDERS)
