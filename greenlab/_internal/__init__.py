"""Private helpers shared by greenlab's modules: atomic writes, quiet native output, validation."""
