"""pyro4compat: Pyro4 4.82's API and wire protocol, maintained."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'^__version__ = "([^"]+)"', (HERE / "pyro4compat" / "_version.py").read_text(), re.M).group(1)

OPTIONAL = {
    "msgpack": ["msgpack>=0.5.2"],
    "dill": ["dill>=0.2.6"],
    "cloudpickle": ["cloudpickle>=1.0"],
    "postgresql": ["psycopg>=3.1"],  # the name server's shared postgresql:// storage
}
OPTIONAL["all"] = sorted({req for reqs in OPTIONAL.values() for req in reqs})
OPTIONAL["test"] = OPTIONAL["all"] + [
    "Pyro4==4.82",  # the oracle: interop tests run it in a child process, never in ours
    "pytest>=7",
    "pytest-timeout>=2",
    "hypothesis>=6",
    "sphinx>=7",  # tests/integration/test_docs.py builds docs/ with warnings as errors
    "psycopg[binary]>=3.1",  # tests run the postgresql storage against a private PostgreSQL server
]

setup(
    name="pyro4compat",
    version=VERSION,
    description="Drop-in, wire-compatible replacement for Pyro4 4.82 (Python Remote Objects)",
    long_description=(HERE / "README.rst").read_text(),
    long_description_content_type="text/x-rst",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["pyro4compat", "pyro4compat.*"]),
    package_data={"pyro4compat": ["py.typed"]},
    install_requires=["serpent>=1.27"],
    extras_require=OPTIONAL,
    entry_points={
        # Pyro4's tools under names that can't clash with a Pyro4 installed alongside
        "console_scripts": [
            "pyro4compat-ns=pyro4compat.naming:main",
            "pyro4compat-nsc=pyro4compat.nsc:main",
            "pyro4compat-test-echoserver=pyro4compat.test.echoserver:main",
            "pyro4compat-check-config=pyro4compat.configuration:main",
            "pyro4compat-flameserver=pyro4compat.utils.flameserver:main",
            "pyro4compat-httpgateway=pyro4compat.utils.httpgateway:main",
        ],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Developers",
        "License :: OSI Approved :: MIT License",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Distributed Computing",
        "Topic :: System :: Networking",
    ],
)
