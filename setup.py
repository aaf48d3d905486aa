"""Extension list only; metadata lives in pyproject.toml.

The Cython modules are optional at build time: without a compiler the package
still installs and ``fastpath`` uses its pure-Python twins. ``make`` checks for a
compiler first and says how to get one, so a missing toolchain is never silent.
"""

import os

from setuptools import Extension, setup

NO_EXTENSIONS = os.environ.get("TAPGATE_NO_EXTENSIONS", "") not in ("", "0")


def extensions() -> list[Extension]:
    if NO_EXTENSIONS:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        raise SystemExit(
            "building tapgate's fastpath needs Cython: install the lock file first "
            "(make install), or set TAPGATE_NO_EXTENSIONS=1 for the pure-Python twin"
        ) from exc
    modules = [
        Extension(f"fastpath.{name}", [f"fastpath/{name}.pyx"], optional=True)
        for name in ("_buckets_c", "_queue_c", "_verify_c")
    ]
    return cythonize(modules, language_level=3, quiet=True)


setup(ext_modules=extensions())
