"""One object per model family (params, build, fit, export) and the one table that names them."""
