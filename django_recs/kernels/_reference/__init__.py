"""Pure numpy/scipy versions of every compiled kernel.

They are the oracles the tests compare the Cython kernels against, and the
fallback when the compiled modules are missing. They favour clarity over
speed and take already-validated input (see the wrappers in the parent
package).
"""
