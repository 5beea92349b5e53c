"""Packaged form profiles (TOML); a package so the files ship in wheels."""
