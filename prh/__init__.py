"""prh: measure representational convergence between neural networks (Huh et al., ICML 2024).

``prh.Reference`` (``prh.reference``) scores your own representations against a finished run's models.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported by name, not by an import statement: every job's code inputs (prh.io.workflow.library_modules)
    # follow this file's imports, and no job runs the reference API.
    if name == "Reference":
        import importlib

        return importlib.import_module("prh.reference").Reference
    raise AttributeError(f"module 'prh' has no attribute '{name}'")
