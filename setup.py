"""Build script: compiles every csrc/*.pyx into engine._kernels.<name>.

OpenMP is used when the compiler accepts it; otherwise the kernels build serial
and a warning is printed (the install never fails for lack of OpenMP).  No
-march flags: SIMD code paths are compiled per function with target attributes
and picked at run time (see csrc/cpu_features.h), so a wheel built here runs on
any x86-64.

Developer switches: ENGINE_BUILD_ONLY=gemm,conv builds just those modules; ENGINE_BUILD_OPT=-O1
sets the optimisation level (default -O3); ENGINE_REUSE_BUILT=1 packages up-to-date in-tree
modules instead of compiling them again (see ParallelBuildExt).
"""
import os
import sys
import glob
import shutil
import subprocess
import tempfile

import numpy
from setuptools import setup, Extension
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join("csrc")


def _compiler_accepts_openmp():
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc.split()[0]) is None:
        return False
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.c")
        with open(path, "w") as f:
            f.write(src)
        cmd = cc.split() + ["-fopenmp", path, "-o", os.path.join(tmp, "t")]
        try:
            return subprocess.run(cmd, capture_output=True).returncode == 0
        except OSError:
            return False


def _extensions():
    only = {s.strip() for s in os.environ.get("ENGINE_BUILD_ONLY", "").split(",") if s.strip()}
    openmp = _compiler_accepts_openmp()
    if not openmp:
        print("WARNING: the C compiler does not accept -fopenmp; engine kernels will run "
              "on one thread. Install a compiler with OpenMP (e.g. gcc) for parallel kernels.",
              file=sys.stderr)
    # -fno-math-errno: nothing reads errno, and without it sqrt stays a libm call that keeps the
    # optimizer loops scalar (same IEEE results either way).  -g0 overrides the -g of Python's
    # own CFLAGS: debug info for the Cython-generated C cost ~15 % of the build and a larger
    # install, for symbols nobody steps through.
    # ENGINE_BUILD_OPT overrides the optimisation level (the sanitizer build in .ci/sanitize
    # uses -O1: extra_compile_args come after CFLAGS, so an -O there would not win over -O3).
    compile_args = [os.environ.get("ENGINE_BUILD_OPT", "-O3"), "-g0", "-fno-math-errno", "-fno-strict-aliasing",
                    "-Wno-unused-function",
                    "-Wno-maybe-uninitialized"]
    link_args = []
    if openmp:
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    # Headers hold the SIMD micro-kernels (the GEMM's are compiled into the gemm module only;
    # the others reach it through gemm_api.h): a change to any of them must rebuild the modules.
    headers = sorted(glob.glob(os.path.join(CSRC, "*.h")))
    exts = []
    for pyx in sorted(glob.glob(os.path.join(CSRC, "*.pyx"))):
        name = os.path.splitext(os.path.basename(pyx))[0]
        if only and name not in only:
            continue
        exts.append(Extension(
            f"engine._kernels.{name}", [pyx],
            include_dirs=[numpy.get_include(), CSRC],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
            depends=headers,
        ))
    from Cython.Build import cythonize
    return cythonize(
        exts,
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False,
                             "cdivision": True, "initializedcheck": False},
        nthreads=os.cpu_count() or 1,
        quiet=True,
    )


class ParallelBuildExt(build_ext):
    """Compile the extension modules in parallel: the install takes seconds, not minutes.

    With ENGINE_REUSE_BUILT=1, a module whose in-tree build (engine/_kernels/, left by
    `pip install -e .` or `build_ext --inplace`) is newer than every file it is built from is
    copied instead of compiled again.  CI uses it to package the wheel it has just compiled for
    the editable install (same sources, same flags) without a second two-minute compile.
    """

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def build_extension(self, ext):
        built = self._up_to_date_inplace_build(ext)
        if built is None:
            super().build_extension(ext)
            return
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(built, target)
        print(f"reusing {os.path.relpath(built, HERE)} (ENGINE_REUSE_BUILT=1)")

    def _up_to_date_inplace_build(self, ext):
        """The in-tree module for `ext` if reuse is asked for and nothing it depends on is newer."""
        if os.environ.get("ENGINE_REUSE_BUILT") != "1" or self.inplace:
            return None
        built = os.path.join(HERE, self.get_ext_filename(ext.name))
        if not os.path.exists(built):
            return None
        # The Cython sources, not the generated C: cythonize may have rewritten that just now only
        # because a build environment's numpy .pxd is newer, with the same content.
        inputs = [os.path.join(HERE, f) for f in ext.depends]
        inputs += glob.glob(os.path.join(HERE, CSRC, "*.pyx")) + glob.glob(os.path.join(HERE, CSRC, "*.pxd"))
        inputs.append(os.path.join(HERE, "setup.py"))
        newest = max(os.path.getmtime(f) for f in inputs if os.path.exists(f))
        return built if os.path.getmtime(built) > newest else None


setup(ext_modules=_extensions(), cmdclass={"build_ext": ParallelBuildExt})
