"""Extension list only; metadata lives in pyproject.toml.

The Cython modules are optional at build time: without a compiler the package
still installs and ``fastpath`` uses its pure-Python twins. ``make`` checks for a
compiler first and says how to get one, so a missing toolchain is never silent.
"""

import os
import pathlib
import shutil

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

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
        for name in ("_bets_c", "_buckets_c", "_queue_c", "_verify_c")
    ]
    return cythonize(modules, language_level=3, quiet=True)


class FreshBuildPy(build_py):
    """Copy the Python sources into a build/lib emptied of earlier builds' copies.

    setuptools reuses build/lib, so a module moved or deleted since the last build in this
    checkout would still ship in the wheel (it did: gateway/admission.py after it moved to
    gateway/bets/). The compiled fastpath modules in build/lib are kept.
    """

    def run(self) -> None:
        shutil.rmtree(os.path.join(self.build_lib, "gateway"), ignore_errors=True)
        for stale in pathlib.Path(self.build_lib, "fastpath").glob("*.py"):
            stale.unlink()
        super().run()


setup(ext_modules=extensions(), cmdclass={"build_py": FreshBuildPy})
