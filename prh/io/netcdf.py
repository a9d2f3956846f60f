"""netCDF-3 files written with scipy alone, in the layout xarray writes and reads (``engine="scipy"``), for
jobs that should not pay for importing xarray and pandas (a model-pair job is mostly start-up otherwise).

Strings become character arrays with a ``string<N>`` dimension and ``_Encoding: utf-8``; floating-point
variables get a NaN ``_FillValue``; attribute values are strings, integers or floats.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prh.io.provenance import as_attrs
from prh.io.workflow import atomic_path


def _chars(values) -> np.ndarray:
    encoded = [str(v).encode("utf-8") for v in values]
    width = max(1, max(len(e) for e in encoded))
    return np.array([list(e.ljust(width, b"\0")) for e in encoded], dtype=np.uint8).view("S1").reshape(-1, width)


def write_netcdf3(path: str | Path, variables: dict, coords: dict, attrs: dict) -> None:
    """Write ``variables`` (name -> (dims, array)) and ``coords`` (dimension name -> 1-d array, numbers or
    strings) with global ``attrs`` to ``path``, atomically."""
    from scipy.io import netcdf_file

    with atomic_path(path) as tmp:
        nc = netcdf_file(str(tmp), "w", version=2)
        try:
            for dim, values in coords.items():
                nc.createDimension(dim, len(values))
            for name, values in list(variables.items()) + [(d, ((d,), v)) for d, v in coords.items()]:
                dims, array = values
                array = np.asarray(array)
                if array.dtype.kind in "UO":
                    chars = _chars(array.ravel())
                    char_dim = f"string{chars.shape[1]}"
                    if char_dim not in nc.dimensions:
                        nc.createDimension(char_dim, chars.shape[1])
                    var = nc.createVariable(name, "S1", tuple(dims) + (char_dim,))
                    var[:] = chars.reshape(array.shape + (chars.shape[1],))
                    var._attributes["_Encoding"] = "utf-8"
                    continue
                if array.dtype.kind == "f":
                    array = array.astype(np.float64)
                elif array.dtype.kind in "iub":
                    array = array.astype(np.int32)
                var = nc.createVariable(name, array.dtype, tuple(dims))
                if array.dtype.kind == "f":
                    var._attributes["_FillValue"] = np.float64(np.nan)
                var[:] = array
            for key, value in attrs.items():  # numbers as xarray writes them: float64, int32
                if isinstance(value, float):
                    value = np.float64(value)
                elif isinstance(value, int) and not isinstance(value, bool):
                    value = np.int32(value)
                setattr(nc, key, value)
        finally:
            nc.close()


def write_netcdf(ds, path: str | Path, provenance: dict | None = None) -> None:
    """Write ``ds`` as netCDF (scipy backend: no extra dependency, byte-stable output), atomically, with
    ``provenance`` (``prh.io.provenance.run_provenance``) among its attributes."""
    from prh.io.workflow import atomic_path

    if provenance:
        ds = ds.assign_attrs(as_attrs(provenance))
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="scipy")
